"""The plugin's HTTP flow with the real codex: generate with a reference as a
data URL, fetch every data[].url; and an aborted request kills codex."""
from __future__ import annotations

import base64
import hashlib
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
    body = {"prompt": "the same scene at night", "n": 2, "size": "2K", "ratio": "16:9",
            "output_format": "png", "model": "gpt-image-2", "return": "file",
            "references": [{"image": "data:image/png;base64," + base64.b64encode(ref).decode(),
                            "label": "layer 1", "width": 2600, "height": 1800}]}
    reply = request(http_server.http_base, "POST", "/v1/images/generate", body, timeout=120)
    assert reply.status == 200, reply.body[:500]
    result = reply.json()
    assert result["status"] == "completed" and result["resolved_size"] == "2048x1152"
    returned = {img["sha256"] for img in fresh.images_returned()}
    assert len(result["data"]) == 2
    for item in result["data"]:
        got = request(http_server.http_base, "GET", item["url"])
        assert got.status == 200 and got.header("Content-Type") == "image/png"
        digest = hashlib.sha256(got.body).hexdigest()
        assert digest == item["sha256"] and digest in returned, "bytes differ from what the upstream sent"
        assert item["resolved_size"] == "%dx%d" % dimensions(got.body)
    # The reference reached the image API byte for byte, in both candidates' edits.
    received = fresh.references_received()
    assert len(received) == 2
    assert all(r["sha256"] == hashlib.sha256(ref).hexdigest() for r in received)


def test_aborted_http_request_kills_codex(http_server, fresh, mock_home):
    body = b'{"prompt": "slow [[upstream: slow=60]]", "count": 2}'
    sock = socket.create_connection(("127.0.0.1", http_server.http_port), timeout=10)
    try:
        sock.sendall(b"POST /v1/images/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        fresh.records.wait_for(lambda rs: sum(r["kind"] == "responses" for r in rs) >= 2, 30)
        running = realcodex.processes_with_codex_home(mock_home)
        assert running, "codex should be running while the upstream holds the stream"
    finally:
        sock.close()  # the plugin gives up
    # Poll both lookups: a process that is exiting may already hide its
    # environment from /proc while its pid is still there.
    deadline = time.monotonic() + 10
    while (realcodex.processes_with_codex_home(mock_home) or any(realcodex.alive(p) for p in running)) \
            and time.monotonic() < deadline:
        time.sleep(0.02)
    left = realcodex.processes_with_codex_home(mock_home)
    realcodex.kill_groups(left)
    assert not left, f"codex still running after the HTTP client went away: {left}"
    assert not any(realcodex.alive(pid) for pid in running)
