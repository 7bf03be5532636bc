"""The hook `python -m codex_image_server` calls: run the shim beside the
gRPC server, in its own thread and event loop, talking to it over a real
gRPC channel on loopback."""
from __future__ import annotations

import asyncio
import socket
import threading

from aiohttp import web

from .access_log import JsonAccessLogger
from .app import Shim

SHUTDOWN_S = 2.0


class ShimHandle:
    def __init__(self):
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._shim: Shim | None = None

    def stop(self, timeout: float = 10.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        try:
            future.result(timeout)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()  # open calls are cancelled with their handlers
        if self._shim is not None:
            await self._shim.close()


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=128)
    sock.setblocking(False)
    return sock


def start(grpc_target: str, host: str, port: int, settings) -> ShimHandle:
    handle = ShimHandle()
    sock = _listen(host, port)  # bind here so a taken port fails the caller at once
    handle.port = sock.getsockname()[1]
    started = threading.Event()
    failure: list[BaseException] = []

    async def serve() -> None:
        shim = Shim(grpc_target, settings)
        await shim.open()
        # handler_cancellation: a client that goes away cancels its handler,
        # and with it the gRPC call (and so the codex processes).
        runner = web.AppRunner(shim.application(), handler_cancellation=True,
                               access_log_class=JsonAccessLogger, shutdown_timeout=SHUTDOWN_S)
        await runner.setup()
        await web.SockSite(runner, sock, shutdown_timeout=SHUTDOWN_S).start()
        handle._shim, handle._runner = shim, runner

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        handle._loop = loop
        try:
            loop.run_until_complete(serve())
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            failure.append(exc)
            started.set()
            loop.close()
            return
        started.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    handle._thread = threading.Thread(target=run, name="http-shim", daemon=True)
    handle._thread.start()
    started.wait()
    if failure:
        sock.close()
        raise failure[0]
    return handle
