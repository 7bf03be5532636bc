"""background on the /v1 plugin surface: the same proto field, through the shim.
Served in-process (tests/support/inprocess_server.py)."""

from __future__ import annotations

import io

from PIL import Image

from tests.shim.client import request

IN_PROCESS = True  # its servers: see conftest.py


def test_transparent_png_through_the_plugin_route(open_server):
    reply = request(
        open_server.http_base,
        "POST",
        "/v1/images/generate",
        {"prompt": "a fox [[fake size=256x256 alpha=key]]", "background": "transparent"},
    )
    assert reply.status == 200, reply.body
    body = reply.json()
    assert body["background"] == "transparent"
    item = body["data"][0]
    assert item["alpha_source"] == "ALPHA_SOURCE_KEYED_MATTE"
    assert (
        item["transparency"]["transparent_share"] > 0.5
        and item["transparency"]["key_color"] == "#00ff00"
    )
    got = request(open_server.http_base, "GET", item["url"])
    with Image.open(io.BytesIO(got.body)) as img:
        assert img.mode == "RGBA" and img.getchannel("A").getextrema() == (0, 255)


def test_jpg_with_transparent_is_a_400_naming_both(open_server):
    reply = request(
        open_server.http_base,
        "POST",
        "/v1/images/generate",
        {"prompt": "x", "background": "transparent", "output_format": "jpg"},
    )
    assert reply.status == 400
    error = reply.json()["error"]
    assert error["code"] == "transparent_needs_alpha_format"
    assert "background" in error["message"] and "output_format" in error["message"]


def test_a_refused_transparency_is_a_clear_400(open_server):
    reply = request(
        open_server.http_base,
        "POST",
        "/v1/images/generate",
        {"prompt": "x [[fake size=256x256 alpha=opaque]]", "background": "transparent"},
    )
    assert reply.status == 400 and reply.json()["error"]["code"] == "transparency_failed"
