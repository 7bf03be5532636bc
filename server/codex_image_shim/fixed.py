"""The fixed answers' fast path: GET/HEAD /v1/capabilities and /healthz,
the calls made most often (probes, plugin start-up), answered before
aiohttp's router, middlewares and response signal, which cost more than the
answer itself.

It only shortcuts the plumbing: the answer comes from the same Shim method
(the dataplane's handler, after the key check), the Host/Origin check, the
CORS values and the request id from the same places, and the response is
written as one prebuilt block through aiohttp's own writer (keep-alive, flow control, the
access log as for any request). Only a plain request takes it: the exact
path (no query, no escapes), no `Expect`, a Host and Origin the guard lets
through. Anything else, and any call that fails (a refused key), goes to the
normal app, which answers it the one usual way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web
from aiohttp.helpers import rfc822_formatted_time
from aiohttp.http import SERVER_SOFTWARE, HttpVersion10, HttpVersion11

from . import access_log
from .app import JSON, Shim

_GET_HEAD = ("GET", "HEAD")


class FixedResponse(web.StreamResponse):
    """A fixed answer written as one block, headers and body, as the normal
    route writes it: the same headers in the same order (aiohttp's
    Content-Type, Content-Length, Date, Server, Connection, then the app
    hook's CORS and request id), formatted here rather than through a header
    dict. tests/shim/test_fixed_answers.py holds the two byte for byte."""

    def __init__(self, status: int, body: bytes, cors: str):
        super().__init__(status=status)
        self._fixed_body = body
        self._cors = cors
        self._block = b""

    async def _start(self, request: web.BaseRequest):
        self._req = request
        writer = self._payload_writer = request.writer
        version = request.version
        keep_alive = self._keep_alive = request.keep_alive
        connection = ""
        if keep_alive:
            if version == HttpVersion10:
                connection = "Connection: keep-alive\r\n"
        elif version == HttpVersion11:
            connection = "Connection: close\r\n"
        self._block = (
            f"HTTP/{version.major}.{version.minor} {self.status} {self.reason}\r\n"
            f"Content-Type: {JSON}\r\nContent-Length: {len(self._fixed_body)}\r\n"
            f"Date: {rfc822_formatted_time()}\r\nServer: "
            f"{SERVER_SOFTWARE}\r\n{connection}{self._cors}"
            f"{access_log.REQUEST_ID_HEADER}: {access_log.request_id(request)}\r\n\r\n"
        ).encode()
        return writer

    async def write_eof(self, data: bytes = b"") -> None:
        if self._eof_sent:
            return
        # One write (HEAD: the headers alone), as aiohttp sends headers with the body.
        await super().write_eof(
            self._block if self._must_be_empty_body else self._block + self._fixed_body
        )


class FixedAnswers:
    def __init__(
        self, shim: Shim, app_handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
    ):
        self._app_handler = app_handler
        self._guard = shim.guard
        # The raw request target, compared as is: "/healthz?x" or "/heal%74hz" is not it.
        self._answers = {
            "/v1/capabilities": shim.capabilities_answer,
            "/healthz": shim.health_answer,
        }

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        answer = self._answers.get(request.raw_path) if request.method in _GET_HEAD else None
        # A refused Host or Origin: the app's guard answers it.
        if (
            answer is not None
            and hdrs.EXPECT not in request.headers
            and self._guard.refusal(request) is None
        ):
            try:
                status, body = await answer(request)
            except Exception:  # noqa: BLE001 - a refusal or failure: the app answers it, its usual way
                return await self._app_handler(request)
            cors = "".join(
                f"{name}: {value}\r\n" for name, value in self._guard.cors_headers(request)
            )
            return FixedResponse(status, body, cors)
        return await self._app_handler(request)
