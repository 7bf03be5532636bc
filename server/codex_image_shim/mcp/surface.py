"""`/mcp`: MCP's streamable HTTP transport on the shim's port.

An ordinary route of the shim's app, answered through `Shim.dispatch` (so
every check the app makes of a request applies, and its errors map the one
usual way): the caller's key is checked before the body is read, exactly
as on every route; the body is read with the shim's limit; then the MCP
SDK's session manager serves it (asgi.py). Each tool call calls the
dataplane's handlers with that HTTP request's caller (surface "mcp").

Reference file paths: only inside the directories the operator lists
(`--mcp-reference-dir`); none listed, none at all, so a remote caller never
reads the server's files.

The MCP SDK is imported, and its session manager started, by the first
key-checked `/mcp` request, not at start-up: the import alone costs ~1 s of
CPU, which every server start (and every replica restart) paid for a route
most never see. That import runs in a worker thread, so the event loop
keeps answering the other routes meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from typing import Any

from aiohttp import web
from codex_image_client.mcp.backend import PathPolicy
from codex_image_server.settings import env_name

from . import asgi
from .backend import HandlersBackend

PATH = "/mcp"
_CALLER = "codex_image.caller"  # scope keys: what a tool call needs of its HTTP request
_ABANDONED = "codex_image.abandoned"


class McpSurface:
    def __init__(self, shim):
        self._shim = shim
        settings = shim.settings
        dirs = settings.mcp_reference_dir
        self._policy = PathPolicy.under(
            dirs,
            how_to_allow=(
                "an operator can allow a directory with --mcp-reference-dir "
                f"({env_name('mcp_reference_dir')})"
            ),
        )
        paths = (
            ", or the path of a file inside " + ", ".join(str(r) for r in self._policy.roots or ())
            if dirs
            else " (no file paths: this server reads no files for MCP callers)"
        )
        self._inline_max = settings.mcp_inline_max_bytes
        self._paths = paths
        self._max_body = settings.http_max_body_bytes
        self._starting: asyncio.Future | None = None  # the session manager, once asked for
        self._sessions: asyncio.Task | None = None
        self._stop = asyncio.Event()

    def mount(self, app: web.Application, handler) -> None:
        """`handler`: the shim's dispatch, which sends `/mcp` here."""
        app.router.add_route("*", PATH, handler)
        app.cleanup_ctx.append(self._run_sessions)

    async def _run_sessions(self, app):
        yield
        self._stop.set()
        if self._sessions is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._sessions

    async def _manager(self) -> Any:
        """The SDK's session manager, running; built by the first caller,
        awaited by any who come while it starts."""
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start_manager())
        # Shielded: a first caller who goes away must not cancel it for the others.
        return await asyncio.shield(self._starting)

    async def _start_manager(self) -> Any:
        loaded = await asyncio.to_thread(
            lambda: (
                importlib.import_module("codex_image_client.mcp.server"),
                importlib.import_module("mcp.server.streamable_http_manager"),
            )
        )
        mcp_server, streamable = loaded
        manager = streamable.StreamableHTTPSessionManager(
            app=mcp_server.build(self._backend_for, self._paths),
            max_request_body_size=self._max_body,
        )
        # The manager's task group must be entered and left by one task: it
        # gets its own, alive as long as the app.
        ready = asyncio.Event()

        async def keep():
            async with manager.run():
                ready.set()
                await self._stop.wait()

        self._sessions = asyncio.create_task(keep())
        started = asyncio.ensure_future(ready.wait())
        await asyncio.wait((started, self._sessions), return_when=asyncio.FIRST_COMPLETED)
        started.cancel()
        if self._sessions.done():
            self._sessions.result()  # it failed to start: so does every /mcp request
        return manager

    def _backend_for(self, ctx) -> HandlersBackend:
        scope = getattr(ctx.request, "scope", None) or {}
        caller = scope.get(_CALLER)
        assert caller is not None  # handle() put the key-checked caller in every scope
        return HandlersBackend(
            self._shim, caller, self._policy, self._inline_max, scope.get(_ABANDONED)
        )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self._shim.check_key(request)
        caller = self._shim.caller(request, "mcp")
        body = await self._shim.read_body(request) if request.method == "POST" else b""
        manager = await self._manager()
        abandoned = asyncio.Event()
        return await asgi.serve(
            manager.handle_request,
            request,
            body,
            {_CALLER: caller, _ABANDONED: abandoned},
            abandoned,
        )
