"""Hostile input over HTTP: a status that matches the cause (never 5xx, never
429 for bad input), a message naming the field, and a JSON log with no
client bytes, no header values and no traceback."""

from __future__ import annotations

import gzip
import json
import time
import zlib

import pytest

from tests.shim.client import data_url, png, raw_request, request
from tests.shim.conftest import KEY
from tests.support.server_proc import start_server

GEN = "/v1/images/generate"


def post(srv, body: bytes, headers: dict | None = None):
    return request(
        srv.http_base,
        "POST",
        GEN,
        body=body,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def bad_fields(reply) -> list[str]:
    details = reply.json()["status"].get("details", [])
    return [v["field"] for d in details for v in d.get("field_violations", [])]


def test_deep_json_is_a_400(open_server):
    reply = post(open_server, b"[" * 5000 + b"]" * 5000)
    assert reply.status == 400, reply.body[:300]
    reply = post(
        open_server,
        json.dumps(
            {
                "prompt": "x",
                "references": [
                    {"label": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}
                ],
            }
        ).encode(),
    )
    assert reply.status == 400, reply.body[:300]


@pytest.mark.parametrize("where", ["prompt", "data_url", "label"])
def test_a_lone_surrogate_is_a_400_naming_the_field(open_server, where):
    body = {"prompt": "a fox", "references": [{"image": data_url(png(8, 8)), "label": "ok"}]}
    if where == "prompt":
        body["prompt"] = "a \ud800 fox"
    elif where == "data_url":
        body["references"][0]["image"] = data_url(png(8, 8)) + "\ud800"
    else:
        body["references"][0]["label"] = "\udfff"
    raw = json.dumps(body).encode()  # json escapes the surrogate as \\ud800: valid JSON text
    reply = post(open_server, raw)
    assert reply.status == 400, reply.body[:300]
    field = {"prompt": "prompt", "data_url": "references[0].image", "label": "references[0].label"}[
        where
    ]
    assert bad_fields(reply) == [field], reply.json()


def test_nul_in_a_label_is_a_400_naming_it(open_server):
    body = {"prompt": "a fox", "references": [{"image": data_url(png(8, 8)), "label": "a\u0000b"}]}
    reply = post(open_server, json.dumps(body).encode())
    assert reply.status == 400 and bad_fields(reply) == ["references[0].label"], reply.body[:300]


@pytest.mark.parametrize("encoding, pack", [("gzip", gzip.compress), ("deflate", zlib.compress)])
def test_a_compressed_body_is_accepted(open_server, encoding, pack):
    body = json.dumps({"prompt": "a fox", "size": "9" * 5000}).encode()
    reply = post(open_server, pack(body), {"Content-Encoding": encoding})
    assert reply.status == 400 and bad_fields(reply) == ["size"], reply.body[:300]


def test_a_body_that_does_not_inflate_is_a_400(open_server):
    reply = post(open_server, b"this is not gzip", {"Content-Encoding": "gzip"})
    assert reply.status == 400 and reply.json()["error"]["code"] == "invalid_content_encoding", (
        reply.body[:300]
    )


def test_an_unknown_content_encoding_is_a_415(open_server):
    reply = post(open_server, b"\x00\x01", {"Content-Encoding": "compress"})
    assert reply.status == 415 and "Content-Encoding" in reply.json()["error"]["message"]


def test_a_long_value_is_400_not_429(open_server):
    reply = post(open_server, json.dumps({"prompt": "x", "size": "9" * 5000}).encode())
    assert reply.status == 400 and bad_fields(reply) == ["size"]
    assert "9" * 100 not in reply.body.decode()


def test_a_body_over_the_grpc_limit_is_a_413(tmp_path):
    args = [
        "--max-references",
        "1",
        "--max-reference-bytes",
        "1000",
        "--http-max-body-bytes",
        str(12 << 20),
    ]
    with start_server(tmp_path, http=True, args=args) as srv:
        reply = post(srv, json.dumps({"prompt": "x" * (6 << 20)}).encode())
        assert reply.status == 413, reply.body[:300]


def test_references_that_take_the_request_over_the_grpc_limit_are_a_413(tmp_path):
    """The images count in the decoded size though the shim hands them over
    beside the message (convert.WithImages), not inside it."""
    args = [
        "--max-references",
        "1",
        "--max-reference-bytes",
        "1000",
        "--http-max-body-bytes",
        str(12 << 20),
    ]
    with start_server(tmp_path, http=True, args=args) as srv:
        image = png(16, 16) + b"\0" * (5 << 20)  # 5 MiB: over 1000 + the 4 MiB of room
        reply = post(
            srv, json.dumps({"prompt": "x", "references": [{"image": data_url(image)}]}).encode()
        )
        assert reply.status == 413, reply.body[:300]


def test_a_utf16_body_is_read_as_json_allows(open_server):
    reply = post(open_server, json.dumps({"prompt": "x", "size": "nope"}).encode("utf-16"))
    assert reply.status == 400 and bad_fields(reply) == [
        "size"
    ]  # parsed: the size is what is wrong


@pytest.mark.parametrize("body", [b"", b"  \r\n\t "])
def test_an_empty_body_is_a_400_saying_so(open_server, body):
    reply = post(open_server, body)
    assert reply.status == 400 and "empty" in reply.json()["error"]["message"], reply.body[:300]


def test_a_compressed_bomb_is_a_413(tmp_path):
    with start_server(tmp_path, http=True, args=["--http-max-body-bytes", "100000"]) as srv:
        bomb = gzip.compress(b'{"prompt": "' + b" " * 5_000_000 + b'"}')
        assert len(bomb) < 100000
        reply = post(srv, bomb, {"Content-Encoding": "gzip"})
        assert reply.status == 413, reply.body[:300]


def test_a_non_ascii_key_is_a_401_with_www_authenticate(keyed_server):
    for headers in (
        {"X-API-Key": "ключ".encode().decode("latin-1")},
        {"Authorization": "Bearer wrong"},
    ):
        reply = post(keyed_server, b'{"prompt": "x"}', headers)
        assert reply.status == 401, reply.body[:300]
        assert reply.header(
            "WWW-Authenticate",
        ) and "Bearer" in reply.header("WWW-Authenticate")


def test_without_a_key_the_body_is_never_parsed(keyed_server):
    reply = post(keyed_server, b"[" * 5000)
    assert reply.status == 401


def test_a_non_ascii_key_is_ignored_when_no_key_is_needed(open_server):
    reply = request(
        open_server.http_base,
        "GET",
        "/v1/capabilities",
        headers={"X-API-Key": "ключ".encode().decode("latin-1")},
    )
    assert reply.status == 200, reply.body[:300]


def test_logs_stay_json_and_keep_header_values_out(tmp_path):
    with start_server(tmp_path, http=True, env={"CODEX_IMAGE_SERVER_API_KEY": KEY}) as srv:
        sock = raw_request(
            srv.http_port,
            b"GET /v1/capabilities HTTP/1.1\r\nHost: x\r\n"
            b"X-API-Key sk-leaked-through-a-bad-line\r\n\r\n",
        )
        sock.recv(65536)
        sock.close()
        sock = raw_request(
            srv.http_port, b"\x16\x03\x01 not http at all sk-leaked-raw-bytes\r\n\r\n"
        )
        sock.recv(65536)
        sock.close()
        post(srv, b"{" * 3000, {"X-API-Key": KEY})
        request(
            srv.http_base,
            "GET",
            "/v1/capabilities",
            headers={"X-API-Key": KEY, "X-Request-Id": "abc"},
        )
        time.sleep(
            0.2
        )  # let the access log line of the last request be written (bounded, not awaited on)
    text = srv.log_text()
    for secret in ("sk-leaked", KEY):
        assert secret not in text
    assert "Traceback" not in text
    records = [json.loads(line) for line in text.splitlines()]  # every line is JSON
    access = [r for r in records if r.get("event") == "http.access"]
    assert access and all(r.get("request_id") for r in access)
    assert {r["status"] for r in access} >= {200, 400}
