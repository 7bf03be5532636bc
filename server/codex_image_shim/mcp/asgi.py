"""An aiohttp request served by an ASGI app (the MCP SDK's streamable HTTP
session manager), on the same event loop.

Why a bridge rather than the SDK's lower pieces driven from aiohttp: the
SDK's transport (sessions, both protocol eras, SSE framing, resumption,
its own request checks) lives in its ASGI app; driving its private
session and stream objects from aiohttp would copy that logic, and break
with each SDK release. The bridge is the small, stable ASGI 3 contract.

The request's body is read by the shim first (its key check, body limit
and Content-Encoding handling apply) and handed over in one message. A
client that goes away cancels the aiohttp handler (handler_cancellation),
which cancels the ASGI app and sets `abandoned` for work the app runs
outside this task (a legacy-era session's tool calls).
"""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

from aiohttp import web

AsgiApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


def scope_of(request: web.Request, extra: dict) -> dict:
    path, _, _ = request.raw_path.partition("?")
    peer = request.transport.get_extra_info("peername") if request.transport else None
    sock = request.transport.get_extra_info("sockname") if request.transport else None
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": f"{request.version.major}.{request.version.minor}",
        "method": request.method, "scheme": request.scheme,
        "path": request.path, "raw_path": path.encode("latin-1"), "root_path": "",
        "query_string": request.query_string.encode("latin-1"),
        "headers": [(name.lower(), value) for name, value in request.raw_headers],
        "client": tuple(peer[:2]) if peer else None, "server": tuple(sock[:2]) if sock else None,
        "state": {}, **extra,
    }


async def serve(app: AsgiApp, request: web.Request, body: bytes | bytearray, extra: dict,
                abandoned: asyncio.Event) -> web.StreamResponse:
    scope = scope_of(request, extra)
    response: web.StreamResponse | None = None
    pending = [body]  # handed over once, then let go
    del body
    gone = asyncio.Event()  # never set while the handler lives: its cancellation is the disconnect

    async def receive() -> dict:
        if pending:
            return {"type": "http.request", "body": bytes(pending.pop()), "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        nonlocal response
        kind = message["type"]
        if kind == "http.response.start":
            response = web.StreamResponse(status=message["status"])
            for name, value in message.get("headers", ()):
                response.headers.add(name.decode("latin-1"), value.decode("latin-1"))
            await response.prepare(request)
        elif kind == "http.response.body":
            assert response is not None, "body before start"
            if message.get("body"):
                await response.write(message["body"])
            if not message.get("more_body", False):
                await response.write_eof()

    try:
        await app(scope, receive, send)
    except asyncio.CancelledError:
        abandoned.set()
        raise
    if response is None:  # the app ended without answering: not a thing the SDK does
        return web.Response(status=500, text="the MCP transport sent no response")
    return response
