"""Hostile HTTP clients over real sockets, for the resource-limit tests and
the stress run: bodies announced and then trickled or never sent, headers
never finished, compressed bombs; and the server's memory as /proc tells it
by pid, sampled while an attack runs."""

from __future__ import annotations

import functools
import os
import socket
import threading
import time
import zlib

MIB = 1024 * 1024
ANNOUNCED = 100 * 1000 * 1000  # what an attacker claims to send


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def cpu_s(pid: int) -> float:
    """User plus system CPU time the process has used."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class PeakRss:
    """`with PeakRss(pid) as rss: ...`; then rss.growth_mib: the highest RSS
    seen (every 10 ms) above the RSS at the start."""

    def __init__(self, pid: int):
        self.pid = pid
        self.start = self.peak = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, rss_mib(self.pid))
            self._done.wait(0.01)

    def __enter__(self) -> PeakRss:
        self.start = self.peak = rss_mib(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mib(self.pid))

    @property
    def growth_mib(self) -> float:
        return self.peak - self.start


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def announce(
    port: int,
    path: str,
    headers: dict | None = None,
    size: int = ANNOUNCED,
    first: bytes = b"{" + b" " * 1023,
) -> socket.socket:
    """A POST announcing `size` bytes of body, of which only `first` is sent."""
    sock = connect(port)
    lines = "".join(
        f"{k}: {v}\r\n"
        for k, v in {
            "Host": "127.0.0.1",
            "Content-Type": "application/json",
            **(headers or {}),
            "Content-Length": str(size),
        }.items()
    )
    sock.sendall(f"POST {path} HTTP/1.1\r\n{lines}\r\n".encode() + first)
    return sock


def unfinished_headers(port: int) -> socket.socket:
    """A request whose headers never end (slowloris)."""
    sock = connect(port)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    return sock


def status_of(sock: socket.socket, timeout: float) -> int | None:
    """The status code of the first answer on `sock`, or None when none came in time."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except (TimeoutError, ConnectionError):
        pass
    parts = data.split(b" ", 2)
    return (
        int(parts[1])
        if len(parts) > 1 and parts[0].startswith(b"HTTP/") and parts[1].isdigit()
        else None
    )


def is_closed(sock: socket.socket) -> bool:
    """True once the server has closed (or reset) the connection: what it
    sent before that is read and dropped; nothing waits."""
    sock.settimeout(0)  # a socket with a timeout would wait for it first
    try:
        while True:
            if not sock.recv(65536):
                return True
    except BlockingIOError:
        return False
    except ConnectionError:
        return True


def trickle(socks: list[socket.socket], byte: bytes = b" ") -> None:
    """One more byte on each connection still open (a trickling client)."""
    for sock in socks:
        try:
            sock.settimeout(0)
            sock.send(byte)
        except OSError:
            pass


def wait_closed(
    socks: list[socket.socket],
    timeout: float,
    trickling: list[socket.socket] = (),
    every: float = 0.25,
    during=None,
) -> float:
    """Seconds until every socket in `socks` is closed by the server
    (AssertionError past `timeout`); meanwhile the `trickling` ones send a
    byte every `every` seconds and `during()` is called as often."""
    started = time.monotonic()
    open_ = list(socks)
    while open_:
        if time.monotonic() - started > timeout:
            raise AssertionError(
                f"{len(open_)} of {len(socks)} connections still open after {timeout} s"
            )
        trickle([s for s in trickling if s in open_])
        if during is not None:
            during()
        time.sleep(every)
        open_ = [s for s in open_ if not is_closed(s)]
    return time.monotonic() - started


@functools.lru_cache(maxsize=2)
def gzip_bomb(inflated: int) -> bytes:
    """A gzip body that inflates to `inflated` bytes of JSON-ish spaces
    (about 1,000 to 1), made without holding the inflated bytes."""
    pack = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [pack.compress(b'{"prompt": "')]
    block = b" " * MIB
    for _ in range(inflated // MIB):
        out.append(pack.compress(block))
    out.append(pack.compress(b'"}') + pack.flush())
    return b"".join(out)


def close_all(socks: list[socket.socket]) -> None:
    for sock in socks:
        try:
            sock.close()
        except OSError:
            pass
