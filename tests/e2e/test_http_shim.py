"""The plugin's HTTP flow with the real codex: generate with a reference as a
data URL, fetch every data[].url; and an aborted request kills codex."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import time

import pytest

from tests.shim.client import request

from . import realcodex
from .calls import dimensions
from .test_generate import _encoded, _noisy

pytestmark = pytest.mark.realcodex


def test_plugin_flow_end_to_end(http_server, fresh):
    ref = _encoded(_noisy(2600, 1800, seed=7), "PNG")
    body = {
        "prompt": "the same scene at night",
        "n": 2,
        "size": "2K",
        "ratio": "16:9",
        "output_format": "png",
        "model": "gpt-image-2",
        "return": "file",
        "references": [
            {
                "image": "data:image/png;base64," + base64.b64encode(ref).decode(),
                "label": "layer 1",
                "width": 2600,
                "height": 1800,
            }
        ],
    }
    reply = request(http_server.http_base, "POST", "/v1/images/generate", body, timeout=120)
    assert reply.status == 200, reply.body[:500]
    result = reply.json()
    assert result["status"] == "completed" and result["resolved_size"] == "2048x1152"
    # The upstream drew its "auto" size; the plugin gets exactly the size it asked for.
    returned = {img["dimensions"] for img in fresh.images_returned()}
    assert len(result["data"]) == 2
    for item in result["data"]:
        got = request(http_server.http_base, "GET", item["url"])
        assert got.status == 200 and got.header("Content-Type") == "image/png"
        assert hashlib.sha256(got.body).hexdigest() == item["sha256"]
        assert item["resolved_size"] == "%dx%d" % dimensions(got.body) == "2048x1152"
        assert (item["native_width"], item["native_height"]) in returned
        assert item["resized"] and item["enlarged"]
    # The reference reached the image API byte for byte, in both candidates' edits.
    received = fresh.references_received()
    assert len(received) == 2
    assert all(r["sha256"] == hashlib.sha256(ref).hexdigest() for r in received)


def _layer(i: int) -> tuple[bytes, int, int]:
    # Photo-like, a different shape for each; the first is 3:2.
    width, height = (900, 600) if i == 0 else (400 + 40 * (i % 5), 400 + 30 * (i % 4))
    return _encoded(_noisy(width, height, seed=100 + i), "PNG"), width, height


def test_sixteen_references_from_the_plugin(http_server, fresh):
    """The plugin's most a request can carry: the first four reach the image
    API byte-identical, the other twelve on one contact sheet, and the image
    has the plugin's size for the reference ratio (3:2 at 2k)."""
    layers = [_layer(i) for i in range(16)]
    body = {
        "prompt": "combine these layers into one poster",
        "count": 1,
        "size": "2k",
        "aspect": "参考图比例",
        "quality": "auto",
        "output_format": "png",
        "model": "gpt-image-2",
        "return": "file",
        "canvas_size": {"width": 2480, "height": 3508},
        "references": [
            {
                "image": "data:image/png;base64," + base64.b64encode(data).decode(),
                "label": f"图层 {i + 1}",
                "source": "layer",
                "width": w,
                "height": h,
            }
            for i, (data, w, h) in enumerate(layers)
        ],
    }
    reply = request(http_server.http_base, "POST", "/v1/images/generate", body, timeout=120)
    assert reply.status == 200, reply.body[:500]
    result = reply.json()
    assert result["resolved_size"] == "2016x1344"
    [item] = result["data"]
    got = request(http_server.http_base, "GET", item["url"])
    assert dimensions(got.body) == (2016, 1344)
    assert [u["usage"] for u in item["references"]] == ["original"] * 4 + ["contact_sheet"] * 12
    [edit] = fresh.records.all("images.edits")
    arrived = edit["references"]
    assert len(arrived) == 5
    assert [r["sha256"] for r in arrived[:4]] == [
        hashlib.sha256(d).hexdigest() for d, _, _ in layers[:4]
    ]
    sheet = arrived[4]
    assert sheet["mime"] == "image/jpeg" and max(sheet["dimensions"]) <= 3072
    assert min(sheet["dimensions"]) >= 1500, "the sheet keeps the tiles at a useful resolution"
    # The model is told the shape in words, and what the fifth image is.
    told = json.dumps(fresh.records.all("responses")[0]["body"], ensure_ascii=False)
    assert "landscape" in told and "aspect ratio 3:2" in told
    assert "contact sheet of references #5 to #16" in told


def test_aborted_http_request_kills_codex(http_server, fresh, mock_home):
    body = b'{"prompt": "slow [[upstream: slow=60]]", "count": 2}'
    sock = socket.create_connection(("127.0.0.1", http_server.http_port), timeout=10)
    try:
        sock.sendall(
            b"POST /v1/images/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
            b"application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        fresh.records.wait_for(lambda rs: sum(r["kind"] == "responses" for r in rs) >= 2, 30)
        running = realcodex.processes_with_codex_home(mock_home)
        assert running, "codex should be running while the upstream holds the stream"
    finally:
        sock.close()  # the plugin gives up
    # Poll both lookups: a process that is exiting may already hide its
    # environment from /proc while its pid is still there.
    deadline = time.monotonic() + 10
    while (
        realcodex.processes_with_codex_home(mock_home) or any(realcodex.alive(p) for p in running)
    ) and time.monotonic() < deadline:
        time.sleep(0.02)
    left = realcodex.processes_with_codex_home(mock_home)
    realcodex.kill_groups(left)
    assert not left, f"codex still running after the HTTP client went away: {left}"
    assert not any(realcodex.alive(pid) for pid in running)
