"""The fixed answers' fast path (codex_image_shim/fixed.py) answers a plain
GET/HEAD of /v1/capabilities and /healthz before aiohttp's router. It must
answer byte for byte what the normal route answers, headers and all (but
the Date and the request id), and check the key the same way. The normal
route is reached with the same request and an empty query ("/healthz?"),
which the fast path never takes. Served in-process
(tests/support/inprocess_server.py)."""

from __future__ import annotations

import json
import re
import socket
import threading
import time

import pytest
from codeximage.v1 import image_service_pb2 as pb

from tests.support import procs

from .conftest import KEY

PATHS = ("/v1/capabilities", "/healthz")


IN_PROCESS = True  # its servers: see conftest.py


KEYS = {
    "none": "",
    "right": f"X-API-Key: {KEY}\r\n",
    "bearer": f"Authorization: Bearer {KEY}\r\n",
    "wrong": "X-API-Key: not-the-key\r\n",
}


def _exchange(
    sock: socket.socket,
    method: str,
    target: str,
    version: str = "1.1",
    extra: str = "",
    host: str = "Host: 127.0.0.1\r\n",
) -> bytes:
    """One request on an open connection; the whole response, as bytes."""
    sock.sendall(f"{method} {target} HTTP/{version}\r\n{host}{extra}\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"\r\nContent-Length: (\d+)", head).group(1))
    if method != "HEAD":
        while len(body) < length:
            chunk = sock.recv(65536)
            assert chunk, data
            body += chunk
    return head + b"\r\n\r\n" + body


def _normalised(response: bytes) -> bytes:
    """The same bytes but for what differs per request: Date and the generated request id."""
    response = re.sub(rb"\r\nDate: [^\r]*", b"\r\nDate: -", response)
    return re.sub(rb"\r\nX-Request-Id: http_[0-9a-f]+", b"\r\nX-Request-Id: -", response)


def _both(
    port: int,
    method: str,
    path: str,
    version: str = "1.1",
    extra: str = "",
    host: str = "Host: 127.0.0.1\r\n",
) -> tuple[bytes, bytes]:
    """(fast path, normal route) on one kept-alive connection, like a client would."""
    if version == "1.0":
        extra += "Connection: keep-alive\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        fast = _exchange(sock, method, path, version, extra, host)
        normal = _exchange(sock, method, path + "?", version, extra, host)
    return fast, normal


# No Origin (curl, the plugin), the server's own page (the console), a UXP plugin.
ORIGINS = {"none": "", "own": "http://127.0.0.1", "plugin": "uxp://com.example.plugin"}


@pytest.mark.parametrize("origin", sorted(ORIGINS))
@pytest.mark.parametrize("version", ["1.1", "1.0"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("path", PATHS)
def test_the_same_bytes_as_the_normal_route(open_server, path, method, version, origin):
    value = ORIGINS[origin] + (f":{open_server.http_port}" if origin == "own" else "")
    host = f"Host: 127.0.0.1:{open_server.http_port}\r\n"
    fast, normal = _both(
        open_server.http_port, method, path, version, f"Origin: {value}\r\n" if value else "", host
    )
    assert fast.startswith(f"HTTP/{version} 200 OK\r\n".encode()), fast[:200]
    assert _normalised(fast) == _normalised(normal)
    assert b"\r\nVary: Origin\r\n" in fast and b"\r\nX-Request-Id: http_" in fast
    if value:  # echoed, never `*`
        assert f"\r\nAccess-Control-Allow-Origin: {value}\r\n".encode() in fast
    else:
        assert b"Access-Control-Allow-Origin" not in fast
    if method == "GET":
        body = fast.partition(b"\r\n\r\n")[2]
        assert json.loads(body)["backend"] == "codex-exec"
    else:
        assert fast.endswith(b"\r\n\r\n") and b"Content-Length: 0" not in fast


@pytest.mark.parametrize(
    "who",
    [
        "Host: evil.example\r\n",
        "Host: :17341\r\n",
        "Host: \r\n",
        "Host: 127.0.0.1\r\nOrigin: http://evil.example\r\n",
        "Host: 127.0.0.1\r\nOrigin: null\r\n",
    ],
)
@pytest.mark.parametrize("path", PATHS)
def test_a_refused_host_or_origin_is_refused_the_same_way(open_server, path, who):
    fast, normal = _both(open_server.http_port, "GET", path, host=who)
    assert _normalised(fast) == _normalised(normal)
    assert fast.startswith(b"HTTP/1.1 421" if "Origin" not in who else b"HTTP/1.1 403"), fast[:200]
    assert b"Access-Control-Allow-Origin" not in fast
    setting = b"--allowed-host" if "Origin" not in who else b"--allowed-origin"
    assert setting in fast.partition(b"\r\n\r\n")[2]


@pytest.mark.parametrize("key", sorted(KEYS))
@pytest.mark.parametrize("path", PATHS)
def test_the_key_is_checked_the_same_way(keyed_server, path, key):
    fast, normal = _both(keyed_server.http_port, "GET", path, extra=KEYS[key])
    assert _normalised(fast) == _normalised(normal)
    refused = path == "/v1/capabilities" and key in ("none", "wrong")  # /healthz stays open
    assert fast.startswith(b"HTTP/1.1 401" if refused else b"HTTP/1.1 200"), fast[:300]
    if refused:
        assert b"\r\nWWW-Authenticate: Bearer" in fast and b"\r\nX-Request-Id: http_" in fast


def test_the_callers_request_id_and_one_log_line_each(open_server):
    with socket.create_connection(("127.0.0.1", open_server.http_port), timeout=10) as sock:
        for i, path in enumerate(PATHS):
            reply = _exchange(sock, "GET", path, extra=f"X-Request-Id: fixed-{i}\r\n")
            assert f"\r\nX-Request-Id: fixed-{i}\r\n".encode() in reply
    # The access line is written at the end of the loop iteration: poll for it.
    assert procs.wait_until(
        lambda: (
            {f"fixed-{i}" for i in range(2)}
            <= {
                r.get("request_id")
                for r in open_server.log_records()
                if r.get("event") == "http.access"
            }
        ),
        timeout=10,
    )
    lines = [
        r for r in open_server.log_records() if str(r.get("request_id", "")).startswith("fixed-")
    ]
    assert [(r["method"], r["path"], r["status"]) for r in lines] == [
        ("GET", p, 200) for p in PATHS
    ]


def test_health_follows_the_slots_in_use(open_server):
    """The answer is kept encoded, and re-encoded when what it says changes."""

    def in_use() -> int:
        with socket.create_connection(("127.0.0.1", open_server.http_port), timeout=10) as sock:
            body = _exchange(sock, "GET", "/healthz").partition(b"\r\n\r\n")[2]
        return json.loads(body)["slots"]["in_use"]

    assert in_use() == 0
    generating = threading.Thread(
        target=lambda: list(
            open_server.stub().Generate(
                pb.GenerateRequest(prompt="hold [[fake delay=3]]"), timeout=60
            )
        )
    )
    generating.start()
    try:
        assert procs.wait_until(lambda: in_use() == 1, timeout=10)
    finally:
        generating.join()
    started = time.monotonic()
    assert procs.wait_until(lambda: in_use() == 0, timeout=10), time.monotonic() - started
