"""The guard's parsing of Host and Origin values, case by case (the
behaviour over real sockets is test_host_origin_guard.py's)."""

from __future__ import annotations

import pytest
from codex_image_shim.guard import Guard, origin_key, split_host


@pytest.mark.parametrize(
    "value,expected",
    [
        ("127.0.0.1", ("127.0.0.1", None)),
        ("127.0.0.1:80", ("127.0.0.1", 80)),
        ("[::1]:17341", ("::1", 17341)),
        ("[::1]", ("::1", None)),
        ("LocalHost:1", ("localhost", 1)),
        ("", None),
        (":17341", None),
        ("[::1", None),
        ("[::1]x", None),
        ("a:0", None),
        ("a:65536", None),
        ("a:-1", None),
        ("a:1:2", None),
        ("[]:1", None),
    ],
)
def test_split_host(value, expected):
    assert split_host(value) == expected


@pytest.mark.parametrize(
    "value,expected",
    [
        ("http://127.0.0.1:17341", ("http", "127.0.0.1", 17341)),
        ("HTTPS://Photos.Example", ("https", "photos.example", 443)),
        ("http://a.example:80", ("http", "a.example", 80)),
        ("uxp://com.example.plugin", ("uxp", "com.example.plugin", None)),
        ("null", None),
        ("http://a.example/", None),
        ("http://user@a.example", None),
        ("a.example", None),
        ("http://", None),
        ("ht tp://a", None),
        ("http://a.example:x", None),
    ],
)
def test_origin_key(value, expected):
    assert origin_key(value) == expected


@pytest.mark.parametrize(
    "host,allowed",
    [
        ("127.0.0.1:1", True),
        ("10.0.0.7", True),
        ("[::1]:1", True),
        ("[2001:db8::1]", True),
        ("localhost", True),
        ("localhost.", True),
        ("x.localhost:1", True),
        ("images.example", True),
        ("IMAGES.EXAMPLE:8080", True),
        ("evil.example", False),
        ("localhost.evil.example", False),
        ("127.0.0.1.evil.example", False),
        ("0x7f000001", False),
        ("2130706433", False),
        ("", False),
        (":1", False),
        ("images.example.evil", False),
    ],
)
def test_host_allowed(host, allowed):
    assert Guard(allowed_hosts=("images.example",)).host_allowed(host) is allowed


@pytest.mark.parametrize(
    "origin,allowed",
    [
        ("http://127.0.0.1:17341", True),
        ("http://127.0.0.1:17342", False),
        ("https://127.0.0.1:17341", False),
        ("uxp://anything", True),
        ("UXP://Anything", True),
        ("https://photos.example", True),
        ("https://photos.example:443", True),
        ("http://photos.example", False),
        ("null", False),
        ("file://", False),
        ("*", False),
        ("", False),
    ],
)
def test_origin_allowed(origin, allowed):
    guard = Guard(allowed_origins=("https://photos.example",))
    assert guard.origin_allowed(origin, "http", "127.0.0.1:17341") is allowed


def test_wildcard_and_null_are_opt_ins():
    assert Guard(allowed_origins=("*",)).origin_allowed("https://x.example", "http", "127.0.0.1")
    assert not Guard(allowed_origins=("*",)).origin_allowed("null", "http", "127.0.0.1")
    assert Guard(allowed_origins=("null",)).origin_allowed("null", "http", "127.0.0.1")
