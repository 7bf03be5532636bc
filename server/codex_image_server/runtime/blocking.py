"""Blocking work (Pillow, disk, process probes) off the event loop, with a
bound on how much of it runs at once: a fixed pool of threads. The loop
itself only ever waits on sockets, so Health and capabilities are answered
whatever the pool is busy with."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class Blocking:
    def __init__(self, threads: int):
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="blocking")
        self._later: set[Future] = set()

    async def run(self, fn: Callable[..., T], *args, **kwargs) -> T:
        ctx = contextvars.copy_context()
        call = functools.partial(ctx.run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    def later(self, fn: Callable[..., object], *args, **kwargs) -> None:
        """Work nobody waits for (a working directory's removal once its call
        has ended), done soon in the pool; `close` lets it finish."""
        future = self._pool.submit(fn, *args, **kwargs)
        self._later.add(future)
        future.add_done_callback(self._later.discard)

    def close(self) -> None:
        futures.wait(list(self._later))
        self._pool.shutdown(wait=True, cancel_futures=True)


async def shielded(awaitable):
    """Await to the end even if the awaiting task is cancelled meanwhile;
    the cancellation is raised afterwards."""
    task = asyncio.ensure_future(awaitable)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.done():
                raise
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError()
    return result
