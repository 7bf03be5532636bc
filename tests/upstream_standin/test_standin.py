"""The stand-in on its own (no codex): sizes, switches, records, hang-ups."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import socket
import urllib.error
import urllib.request

import pytest
from PIL import Image

from . import UpstreamStandin, parse_directive


@pytest.fixture
def standin():
    with UpstreamStandin() as running:
        yield running


def _post(standin, path: str, body: dict) -> tuple[int, bytes]:
    req = urllib.request.Request(
        standin.base_url + path, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _png(width, height) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (1, 2, 3)).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    "size, expected", [("auto", (1024, 1024)), (None, (1024, 1024)), ("1536x1024", (1536, 1024))]
)
def test_generations_return_a_png_of_the_requested_size(standin, size, expected):
    body = {"prompt": "p", "model": "gpt-image-2", **({"size": size} if size else {})}
    status, raw = _post(standin, "/images/generations", body)
    data = base64.b64decode(json.loads(raw)["data"][0]["b64_json"])
    assert status == 200 and Image.open(io.BytesIO(data)).size == expected
    assert standin.images_returned()[0]["sha256"] == hashlib.sha256(data).hexdigest()


def test_edits_record_decoded_references(standin):
    ref = _png(64, 48)
    url = "data:image/png;base64," + base64.b64encode(ref).decode()
    status, _ = _post(standin, "/images/edits", {"prompt": "p", "images": [{"image_url": url}]})
    [got] = standin.references_received()
    assert status == 200 and got["sha256"] == hashlib.sha256(ref).hexdigest()
    assert got["dimensions"] == (64, 48) and got["mime"] == "image/png"


def test_directive_beats_runtime_switch_and_429_has_quota_body(standin):
    standin.set(images_status=403)
    status, _ = _post(standin, "/images/generations", {"prompt": "p"})
    assert status == 403
    status, raw = _post(
        standin, "/images/generations", {"prompt": "p [[upstream: images_status=429]]"}
    )
    error = json.loads(raw)["error"]
    assert status == 429 and error["type"] == "usage_limit_reached" and error["resets_at"] > 0


def test_responses_stream_calls_imagegen_with_attached_paths(standin):
    body = {
        "input": [
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": '<image name=[Image #1] path="/abs/a.png">'},
                    {"type": "input_text", "text": "</image>"},
                    {"type": "input_text", "text": "draw it"},
                ],
            }
        ]
    }
    status, raw = _post(standin, "/responses", body)
    events = [
        json.loads(line[6:]) for line in raw.decode().splitlines() if line.startswith("data: ")
    ]
    call = [e["item"] for e in events if e.get("item", {}).get("type") == "function_call"][0]
    assert status == 200 and events[-1]["type"] == "response.completed"
    assert (call["namespace"], call["name"]) == ("image_gen", "imagegen")
    assert json.loads(call["arguments"]) == {
        "prompt": "draw it",
        "referenced_image_paths": ["/abs/a.png"],
    }


def test_hang_up_during_slow_stream_is_recorded(standin):
    body = json.dumps(
        {
            "input": [
                {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "x [[upstream: slow=30]]"}],
                }
            ]
        }
    ).encode()
    with socket.create_connection(("127.0.0.1", standin.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body
        )
        assert sock.recv(12).startswith(b"HTTP/1.1 200")  # headers sent, stream held
    closed = standin.records.wait_for(lambda rs: [r for r in rs if r["kind"] == "client_closed"], 5)
    assert closed[0]["path"] == "/v1/responses"


def test_unknown_switch_in_directive_fails_loudly():
    with pytest.raises(ValueError):
        parse_directive("[[upstream: slwo=3]]")
