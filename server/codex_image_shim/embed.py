"""The hook `python -m codex_image_server` calls: serve the shim on the
server's own event loop, calling the dataplane's handlers (the ones the gRPC
servicer calls)."""

from __future__ import annotations

import socket

from aiohttp import web

from .access_log import JsonAccessLogger
from .app import Shim
from .connection_limits import GuardedSite, Limits
from .fixed import FixedAnswers
from .front_door import FrontDoor

SHUTDOWN_S = 2.0
BACKLOG = 1024


class ShimHandle:
    def __init__(self, runner: web.AppRunner, port: int):
        self._runner = runner
        self.port = port

    async def stop(self) -> None:
        await self._runner.cleanup()  # open calls are cancelled with their handlers


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=BACKLOG)
    sock.setblocking(False)
    return sock


async def start(handlers, settings, *, metrics_registry=None) -> ShimHandle:
    """`handlers`: the dataplane's (dataplane/handlers.py)."""
    sock = _listen(settings.http_host, settings.http_port)  # a taken port fails the caller at once
    try:
        shim = Shim(handlers, settings, metrics_registry=metrics_registry)
        # handler_cancellation: a client that goes away cancels its handler,
        # and with it the call (and so the codex processes).
        runner = web.AppRunner(
            shim.application(),
            handler_cancellation=True,
            access_log_class=JsonAccessLogger,
            shutdown_timeout=SHUTDOWN_S,
            keepalive_timeout=settings.http_keepalive_timeout_ms / 1000,
        )
        await runner.setup()
        # The front door (no body without a key) before everything; then
        # the fixed answers, the app for all else.
        server = runner.server
        assert server is not None  # made by setup()
        fixed = FixedAnswers(shim, server.request_handler)
        server.request_handler = FrontDoor(shim, fixed.handle).handle
        # Connections: the header clock and the per-client cap (connection_limits.py).
        await GuardedSite(runner, sock, Limits.of(settings), backlog=BACKLOG).start()
    except BaseException:
        sock.close()
        raise
    return ShimHandle(runner, sock.getsockname()[1])
