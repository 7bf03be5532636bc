"""An aiohttp request served by an ASGI app (the MCP SDK's streamable HTTP
session manager), on the same event loop.

Why a bridge rather than the SDK's lower pieces driven from aiohttp: the
SDK's transport (sessions, both protocol eras, SSE framing, resumption,
its own request checks) lives in its ASGI app; driving its private
session and stream objects from aiohttp would copy that logic, and break
with each SDK release. The bridge is the small, stable ASGI 3 contract.

The request's body is read by the shim first (its key check, body limit
and Content-Encoding handling apply) and handed over in one message. A
client that goes away cancels the aiohttp handler (handler_cancellation):
the app then hears `http.disconnect`, as from any ASGI server (on the
2026-07-28 wire that cancels the request's tool call), and `abandoned` is
set for work the app runs elsewhere (a 2025-era session's tool calls).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from typing import Any

from aiohttp import web

Message = MutableMapping[str, Any]
AsgiApp = Callable[
    [Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Coroutine[Any, Any, None],
]


def scope_of(request: web.Request, extra: dict) -> dict:
    path, _, _ = request.raw_path.partition("?")
    peer = request.transport.get_extra_info("peername") if request.transport else None
    sock = request.transport.get_extra_info("sockname") if request.transport else None
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": f"{request.version.major}.{request.version.minor}",
        "method": request.method,
        "scheme": request.scheme,
        "path": request.path,
        "raw_path": path.encode("latin-1"),
        "root_path": "",
        "query_string": request.query_string.encode("latin-1"),
        "headers": [(name.lower(), value) for name, value in request.raw_headers],
        "client": tuple(peer[:2]) if peer else None,
        "server": tuple(sock[:2]) if sock else None,
        "state": {},
        **extra,
    }


async def serve(
    app: AsgiApp,
    request: web.Request,
    body: bytes | bytearray,
    extra: dict,
    abandoned: asyncio.Event,
) -> web.StreamResponse:
    """Run `app` for `request`; `abandoned` is set when the client goes away."""
    scope = scope_of(request, extra)
    response: web.StreamResponse | None = None
    pending = [body]  # handed over once, then let go
    del body
    gone = asyncio.Event()

    async def receive() -> Message:
        if pending:
            return {"type": "http.request", "body": bytes(pending.pop()), "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal response
        if gone.is_set():
            return  # as ASGI servers do: what the app sends after a disconnect goes nowhere
        kind = message["type"]
        try:
            if kind == "http.response.start":
                response = web.StreamResponse(status=message["status"])
                for name, value in message.get("headers", ()):
                    response.headers.add(name.decode("latin-1"), value.decode("latin-1"))
                await response.prepare(request)
            elif kind == "http.response.body" and response is not None:
                if message.get("body"):
                    await response.write(message["body"])
                if not message.get("more_body", False):
                    await response.write_eof()
        except ConnectionError:
            gone.set()

    # The app runs as its own task: a client that goes away cancels this
    # handler (handler_cancellation), and the app is told so the ASGI way, by
    # `http.disconnect`, and left to end on its own. Cancelling it outright
    # would cut short what it does after an answer: an MCP client closes an
    # SSE stream once it has read its answer, and the SDK drops a session
    # whose opening request was cancelled.
    task = asyncio.create_task(app(scope, receive, send))
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        gone.set()
        abandoned.set()
        await _settle(task)
        raise
    if response is None:  # the app ended without answering: not a thing the SDK does
        return web.Response(status=500, text="the MCP transport sent no response")
    return response


async def _settle(task: asyncio.Task, grace_s: float = 10.0) -> None:
    """Wait for the app to end after a disconnect; past the grace, cancel it."""
    done, _ = await asyncio.wait((task,), timeout=grace_s)
    if not done:
        task.cancel()
        await asyncio.wait((task,))
    if not task.cancelled():
        # Retrieved, not raised: the client is gone, and the SDK logs its own failures.
        task.exception()
