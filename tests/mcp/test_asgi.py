"""The aiohttp -> ASGI bridge under /mcp, with small ASGI apps over a real
socket: what the app is handed, what it sends back, and what it hears when
the client goes away (`http.disconnect`, not a cancellation)."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import aiohttp
from aiohttp import web
from codex_image_shim.mcp import asgi


@contextlib.asynccontextmanager
async def serving(app, seen: dict):
    async def handle(request: web.Request):
        seen["abandoned"] = asyncio.Event()
        body = await request.read()
        return await asgi.serve(app, request, body, {"extra.key": "value"}, seen["abandoned"])

    application = web.Application()
    application.router.add_route("*", "/mcp", handle)
    runner = web.AppRunner(application, handler_cancellation=True)
    await runner.setup()
    sock = socket.create_server(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        await runner.cleanup()


def test_request_and_response_pass_through():
    seen: dict = {}

    async def app(scope, receive, send):
        seen["scope"] = scope
        seen["message"] = await receive()
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [(b"content-type", b"text/plain"), (b"x-two", b"a"), (b"x-two", b"b")],
            }
        )
        await send({"type": "http.response.body", "body": b"part one, ", "more_body": True})
        await send({"type": "http.response.body", "body": b"part two"})

    async def scenario():
        async with serving(app, seen) as base, aiohttp.ClientSession() as session:
            async with session.post(
                base + "/mcp?x=1", data=b'{"a": 1}', headers={"X-Thing": "yes"}
            ) as answer:
                return answer.status, answer.headers.getall("x-two"), await answer.read()

    status, two, body = asyncio.run(scenario())
    assert (status, two, body) == (201, ["a", "b"], b"part one, part two")
    scope = seen["scope"]
    assert (scope["method"], scope["path"], scope["query_string"]) == ("POST", "/mcp", b"x=1")
    assert (b"x-thing", b"yes") in scope["headers"] and scope["extra.key"] == "value"
    assert scope["client"][0] == "127.0.0.1"
    assert seen["message"] == {"type": "http.request", "body": b'{"a": 1}', "more_body": False}
    assert not seen["abandoned"].is_set()


def test_a_client_that_goes_away_is_a_disconnect_not_a_cancellation():
    seen: dict = {"events": []}
    streaming = asyncio.Event()

    async def app(scope, receive, send):
        await receive()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await send({"type": "http.response.body", "body": b"data: first\n\n", "more_body": True})
        streaming.set()
        try:
            seen["events"].append((await receive())["type"])
            await send(
                {"type": "http.response.body", "body": b"data: too late\n\n", "more_body": True}
            )
            seen["events"].append("ended on its own")
        except asyncio.CancelledError:
            seen["events"].append("cancelled")
            raise

    async def scenario():
        async with serving(app, seen) as base:
            async with aiohttp.ClientSession() as session:
                async with session.post(base + "/mcp", data=b"{}") as answer:
                    assert await answer.content.readline() == b"data: first\n"
                    await streaming.wait()
            # The session is closed: the connection with it.
            for _ in range(200):
                if "ended on its own" in seen["events"] or "cancelled" in seen["events"]:
                    break
                await asyncio.sleep(0.01)

    asyncio.run(scenario())
    assert seen["events"] == ["http.disconnect", "ended on its own"]
    assert seen["abandoned"].is_set()


def test_an_app_that_answers_nothing_is_a_500():
    seen: dict = {}

    async def app(scope, receive, send):
        await receive()

    async def scenario():
        async with serving(app, seen) as base, aiohttp.ClientSession() as session:
            async with session.post(base + "/mcp", data=b"{}") as answer:
                return answer.status

    assert asyncio.run(scenario()) == 500
