"""Dropping a reader that stopped reading: a download whose peer takes
nothing for `timeout_s` has its task cancelled, which closes the stream (a
gRPC GetImageFile) or the connection (the shim's file route)."""
from __future__ import annotations

import asyncio
from typing import Callable


class IdleTimer:
    """Calls `on_idle` (by default: cancels the task that created it) unless
    `touch()` is called at least every `timeout_s`. Use as a context manager
    around the sending."""

    def __init__(self, timeout_s: float, on_idle: Callable[[], object] | None = None):
        self.timeout_s = timeout_s
        self.fired = False
        self._loop = asyncio.get_running_loop()
        self._on_idle = on_idle or asyncio.current_task().cancel
        self._last = self._loop.time()
        self._handle: asyncio.TimerHandle | None = None

    def __enter__(self) -> "IdleTimer":
        self._handle = self._loop.call_at(self._last + self.timeout_s, self._check)
        return self

    def __exit__(self, *exc) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def touch(self) -> None:
        self._last = self._loop.time()

    def _check(self) -> None:
        due = self._last + self.timeout_s
        if self._loop.time() < due:
            self._handle = self._loop.call_at(due, self._check)
            return
        self._handle = None
        self.fired = True
        self._on_idle()
