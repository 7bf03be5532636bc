"""The HTTP access log: one JSON line per request, with a request id the
caller may choose (X-Request-Id) or is given, and echoed back. Header values
and the query string are never logged: either may carry a key."""

from __future__ import annotations

import itertools
import re
import secrets

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from codex_image_server.runtime import logs

REQUEST_ID_HEADER = "X-Request-Id"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_REQUEST_ID = web.RequestKey("request_id", str)
_PATH_CHARS = 200
# Ids only need to be unique, not secret: a random prefix per process and a
# counter (no random draw per request).
_ID_PREFIX = "http_" + secrets.token_hex(4)
_ID_COUNTER = itertools.count()


def request_id(request: web.BaseRequest) -> str:
    """The id of this request, fixed on first use."""
    # A request's get() is collections.abc's: a miss raises and catches a
    # KeyError, costly on every request. Most requests hold nothing at all.
    rid = request.get(_REQUEST_ID) if len(request) else None
    if rid is None:
        offered = request.headers.get(REQUEST_ID_HEADER, "")
        rid = (
            offered
            if offered and _SAFE_ID.match(offered)
            else f"{_ID_PREFIX}{next(_ID_COUNTER):08x}"
        )
        request[_REQUEST_ID] = rid
    return rid


def add_request_id(request: web.BaseRequest, headers) -> None:
    """Fix the request's id and put it in the response's headers."""
    headers[REQUEST_ID_HEADER] = request_id(request)


class JsonAccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        path = request.path
        # The id as the response carries it (set as it was prepared): no second lookup.
        rid = response.headers.get(REQUEST_ID_HEADER) or request_id(request)
        logs.access(
            rid,
            request.method[:16],
            path[:_PATH_CHARS] + ("..." if len(path) > _PATH_CHARS else ""),
            response.status,
            response.body_length,
            int(time * 1000),
            request.remote,
        )

    @property
    def enabled(self) -> bool:
        return True
