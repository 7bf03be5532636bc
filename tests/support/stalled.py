"""A download client that stops reading, over a real socket: for tests and
benches of slow readers."""

from __future__ import annotations

import socket

TCP_ESTABLISHED = 1


def stalled_download(port: int, path: str) -> socket.socket:
    """GET `path`, then never read: a small receive buffer fills at once."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return sock


def has_data(sock: socket.socket) -> bool:
    """Bytes wait unread (the server has started sending)."""
    try:
        return bool(sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except BlockingIOError:
        return False


def established(sock: socket.socket) -> bool:
    """False once the server closed or reset the connection (read from TCP_INFO, nothing
    consumed)."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0] == TCP_ESTABLISHED
