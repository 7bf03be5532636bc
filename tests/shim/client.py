"""A tiny stdlib HTTP client for the shim tests: real sockets, nothing mocked."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import socket
import struct
import zlib
from http import client as http_client
from urllib.parse import urlsplit


@dataclasses.dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


def request(
    base: str, method: str, path: str, body=None, headers: dict | None = None, timeout: float = 60.0
) -> Reply:
    """`path` may be a path or an absolute URL (as data[].url is)."""
    target = urlsplit(path if "://" in path else base + path)
    conn = http_client.HTTPConnection(target.hostname, target.port, timeout=timeout)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        conn.request(
            method,
            target.path + (f"?{target.query}" if target.query else ""),
            body=body,
            headers=headers or {},
        )
        resp = conn.getresponse()
        return Reply(resp.status, dict(resp.getheaders()), resp.read())
    finally:
        conn.close()


def raw_request(port: int, data: bytes) -> socket.socket:
    """Send raw bytes on a fresh socket and hand the socket back (for aborts)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(data)
    return sock


def http_post_bytes(path: str, body: bytes, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


def abort(sock: socket.socket) -> None:
    """Close with RST, like a client that is killed or aborts its request."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def png(width: int, height: int, rgb=(10, 20, 30)) -> bytes:
    def chunk(kind, data):
        body = kind + data
        return (
            struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
        )

    raw = (b"\x00" + bytes(rgb) * width) * height
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def noise_png(width: int, height: int) -> bytes:
    """An incompressible PNG (stored deflate blocks of random pixels)."""

    def chunk(kind, data):
        body = kind + data
        return (
            struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
        )

    raw = b"".join(b"\x00" + os.urandom(width * 3) for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw, 0))
        + chunk(b"IEND", b"")
    )
