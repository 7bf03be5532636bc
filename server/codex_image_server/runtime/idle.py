"""Dropping a reader that stopped reading: a download whose peer takes
nothing for `timeout_s` is ended, which closes the stream (a gRPC
GetImageFile) or the connection (the shim's file route)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable

from codex_image_server.runtime.logs import log


class IdleTimer:
    """Calls `on_idle` (by default: cancels the task that created it) when one
    wait on the peer (each `with timer.waiting():`) lasts `timeout_s`. Use as
    a context manager around the whole sending; time spent outside
    `waiting()` (e.g. waiting for codex) never counts."""

    def __init__(self, timeout_s: float, what: str, on_idle: Callable[[], object] | None = None):
        self.timeout_s = timeout_s
        self.fired = False
        self._what = what
        self._loop = asyncio.get_running_loop()
        if on_idle is None:
            task = asyncio.current_task()
            assert task is not None  # by default the timer ends the task that made it
            on_idle = task.cancel
        self._on_idle = on_idle
        self._last = self._loop.time()
        self._armed = False
        self._handle: asyncio.TimerHandle | None = None

    def __enter__(self) -> IdleTimer:
        self._handle = self._loop.call_at(self._last + self.timeout_s, self._check)
        return self

    def __exit__(self, *exc) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    @contextlib.contextmanager
    def waiting(self):
        """Around one wait on the peer (a write, a sendfile step)."""
        self._last = self._loop.time()
        self._armed = True
        try:
            yield
        finally:
            self._armed = False

    def _check(self) -> None:
        due = (self._last if self._armed else self._loop.time()) + self.timeout_s
        if self._loop.time() < due:
            self._handle = self._loop.call_at(due, self._check)
            return
        self._handle = None
        self.fired = True
        log(
            "download.idle_dropped",
            level="warning",
            via=self._what,
            idle_ms=int(self.timeout_s * 1000),
        )
        self._on_idle()


def reset(transport: asyncio.Transport) -> None:
    """Close a connection at once with RST: the kernel keeps no send buffer
    for a peer that will never read it."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()
