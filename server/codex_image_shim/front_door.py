"""What every HTTP request passes before any route sees it.

A body is read only from a caller whose key passes: a request that carries
one (a Content-Length above 0, or chunked) is checked with the one key check
(Shim.check_key; the route reuses its answer) before the router, the `Expect: 100-continue`
answer and any handler run, so a route added later inherits the rule
instead of having to remember it. A stranger's body is never buffered,
inflated or parsed: the answer is a 401 in the shape of the surface asked.
Whenever an answer leaves part of a body unread (that 401, a 413, a 408),
the rest is dropped as it arrives, never parsed or inflated (aiohttp alone
would inflate it while lingering), and the connection closes after it. Requests without a
body (probes, GETs) pass as they are; their route checks their key.

After the route: an answer to a request whose body stalled closes its
connection at once (body.close_after).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from . import body, errors

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


class FrontDoor:
    def __init__(self, shim, inner: Handler):
        self._shim = shim
        self._inner = inner

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if not request.body_exists:  # the hot path (probes, GETs): one attribute
            return await self._inner(request)
        try:
            self._shim.check_key(request)
        except errors.ShimError as exc:
            response = self._shim.refusal(request, exc)
        else:
            response = await body.close_after(request, await self._inner(request))
        if not request.content.is_eof():
            # What is left of the body is not wanted: it is dropped as it
            # comes, unparsed and uninflated, and the connection ends with
            # this answer.
            response.force_close()
            drop = getattr(request.protocol, "drop_incoming", None)
            if drop is not None:
                drop()
        return response
