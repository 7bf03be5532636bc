"""The HTTP access log: one JSON line per request, with a request id the
caller may choose (X-Request-Id) or is given, and echoed back. Header values
and the query string are never logged: either may carry a key."""
from __future__ import annotations

import re
import secrets

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from codex_image_server.logs import log

REQUEST_ID_HEADER = "X-Request-Id"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_PATH_CHARS = 200


def request_id(request: web.Request) -> str:
    """The id of this request, fixed on first use."""
    rid = request.get("request_id")
    if rid is None:
        offered = request.headers.get(REQUEST_ID_HEADER, "")
        rid = offered if _SAFE_ID.match(offered) else "http_" + secrets.token_hex(8)
        request["request_id"] = rid
    return rid


async def add_request_id(request: web.Request, response: web.StreamResponse) -> None:
    response.headers[REQUEST_ID_HEADER] = request_id(request)


class JsonAccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        path = request.path
        log("http.access", request_id=request_id(request), method=request.method[:16],
            path=path[:_PATH_CHARS] + ("..." if len(path) > _PATH_CHARS else ""),
            status=response.status, bytes=response.body_length, duration_ms=int(time * 1000),
            remote=request.remote)

    @property
    def enabled(self) -> bool:
        return True
