"""Blocking work (Pillow, disk, process probes) off the event loop, with a
bound on how much of it runs at once: a fixed pool of threads. The loop
itself only ever waits on sockets, so Health and capabilities are answered
whatever the pool is busy with."""
from __future__ import annotations

import asyncio
import contextvars
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

T = TypeVar("T")


class Blocking:
    def __init__(self, threads: int):
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="blocking")

    async def run(self, fn: Callable[..., T], *args, **kwargs) -> T:
        ctx = contextvars.copy_context()
        call = functools.partial(ctx.run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
