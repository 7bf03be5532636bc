"""The fixed answers' fast path: GET/HEAD /v1/capabilities and /healthz,
the calls made most often (probes, plugin start-up), answered before
aiohttp's router, middlewares and response signal, which cost more than the
answer itself.

It only shortcuts the plumbing: the answer comes from the same Shim method
(the servicer in-process, with its key check), the headers from the same
function, and aiohttp still writes the response (HEAD, keep-alive, Date).
Only a plain request takes it: the exact path (no query, no escapes), no
`Expect`. Anything else, and any call that fails (a refused key), goes to
the normal app, which answers it the one usual way.
"""
from __future__ import annotations

from typing import Awaitable, Callable

from aiohttp import hdrs, web

from .app import JSON, Shim, add_common_headers

_GET_HEAD = ("GET", "HEAD")


class FixedResponse(web.Response):
    """A response of the fast path: the common headers are added where the
    app's on_response_prepare hook would add them, so the bytes match."""

    async def _prepare_headers(self) -> None:
        await super()._prepare_headers()
        add_common_headers(self._req, self._headers)


class FixedAnswers:
    def __init__(self, shim: Shim, app_handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]):
        self._app_handler = app_handler
        # The raw request target, compared as is: "/healthz?x" or "/heal%74hz" is not it.
        self._answers = {"/v1/capabilities": shim.capabilities_answer,
                         "/healthz": lambda request: shim.health_answer()}

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        answer = self._answers.get(request.raw_path) if request.method in _GET_HEAD else None
        if answer is not None and hdrs.EXPECT not in request.headers:
            try:
                status, body = await answer(request)
            except Exception:  # noqa: BLE001 - a refusal or failure: the app answers it, its usual way
                return await self._app_handler(request)
            return FixedResponse(body=body, status=status, content_type=JSON)
        return await self._app_handler(request)
