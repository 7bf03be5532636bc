"""Reading a request body: only as its bytes arrive, only up to the route's
limit, and only while they keep arriving.

Nothing is reserved for a body before its bytes are here: the buffer is one
bytearray that grows as chunks come in. Past glibc's mmap threshold (heap.py
fixes it at 4 MiB) each growth is a realloc that moves pages (mremap) rather
than copying them, and the few pages CPython over-allocates are never touched,
so a body is held once, as a preallocated buffer of its Content-Length would
hold it, without a caller who announces 100 MB and sends nothing being given
100 MB. A compressed body is inflated by aiohttp in bounded steps as it is
read, so the inflated bytes count against the limit before more are made.

A body that stops arriving for the body timeout is a 408, and the connection
is closed after the answer rather than lingered on (see `close_after`).
"""

from __future__ import annotations

import asyncio
import contextlib

import grpc
from aiohttp import BodyPartReader, http_exceptions, web, web_protocol
from codex_image_server.runtime import heap
from multidict import CIMultiDictProxy

from . import errors

ACCEPTED_ENCODINGS = ("", "identity", "gzip", "x-gzip", "deflate")
MULTIPART_CHUNK = 64 * 1024
# Set on a request whose body stalled: its answer closes the connection.
STALLED = web.RequestKey("codex_image.body_stalled", bool)


def body_timeout(timeout_s: float) -> errors.ShimError:
    return errors.ShimError(
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "BODY_TIMEOUT",
        f"the request body stopped arriving for {timeout_s:g} s",
        http_status=408,
    )


class Arrival:
    """Each wait for more of the body gets `timeout_s`; time spent on bytes
    already here (copying, counting) does not count."""

    def __init__(self, deadline: asyncio.Timeout, timeout_s: float):
        self._deadline = deadline
        self._timeout_s = timeout_s
        self._loop = asyncio.get_running_loop()

    async def wait(self, awaitable):
        self._deadline.reschedule(self._loop.time() + self._timeout_s)
        try:
            return await awaitable
        finally:
            if (
                not self._deadline.expired()
            ):  # an expired one cannot be changed; it is ending the block
                self._deadline.reschedule(None)


@contextlib.asynccontextmanager
async def arriving(request: web.BaseRequest, timeout_s: float):
    """`async with arriving(request, s) as arrival: await arrival.wait(...)`;
    a wait that lasts `timeout_s` ends the block with a 408."""
    try:
        async with asyncio.timeout(None) as deadline:
            yield Arrival(deadline, timeout_s)
    except TimeoutError:
        if not deadline.expired():
            raise
        request[STALLED] = True
        raise body_timeout(timeout_s) from None


@contextlib.asynccontextmanager
async def reading(request: web.BaseRequest, limit: int, timeout_s: float):
    """Around reading a body: its encoding is one we inflate, its declared
    length is within `limit` (refused before a byte is read), each wait for
    more is timed (`arrival.wait`), and a body aiohttp cannot read (bad
    chunking, bad compression) is a 400."""
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ACCEPTED_ENCODINGS:
        raise errors.unsupported_encoding(encoding)
    if request.content_length is not None and request.content_length > limit:
        raise errors.body_too_large(limit)
    try:
        async with arriving(request, timeout_s) as arrival:
            yield arrival
    except (http_exceptions.HttpProcessingError, web_protocol.RequestPayloadError):
        if encoding in ("", "identity"):
            raise errors.invalid_json(
                "the request body could not be read (bad chunked encoding?)"
            ) from None
        raise errors.bad_encoding(encoding) from None


async def read(request: web.BaseRequest, limit: int, timeout_s: float) -> bytearray:
    """The body, inflated when it came gzip or deflate: the limit counts
    inflated bytes, and no chunk past it is kept."""
    body = bytearray()
    async with reading(request, limit, timeout_s) as arrival:
        while chunk := await arrival.wait(request.content.readany()):
            if len(body) + len(chunk) > limit:
                raise errors.body_too_large(limit)
            body += chunk
    heap.body_assembled(len(body))
    return body


async def read_parts(
    request: web.BaseRequest, limit: int, timeout_s: float
) -> list[tuple[str | None, CIMultiDictProxy[str], bytearray]]:
    """A multipart/form-data body as (name, headers, bytes) per part, the
    parts together within `limit`, read the same way as `read`. Raises
    ValueError on a body that is not multipart as expected."""
    parts, total = [], 0
    async with reading(request, limit, timeout_s) as arrival:
        reader = await request.multipart()
        while (part := await arrival.wait(reader.next())) is not None:
            if not isinstance(part, BodyPartReader):
                raise ValueError("a multipart body nested in a part")
            data = bytearray()
            while chunk := await arrival.wait(part.read_chunk(MULTIPART_CHUNK)):
                total += len(chunk)
                if total > limit:
                    raise errors.body_too_large(limit)
                data += chunk
            parts.append((part.name, part.headers, data))
    return parts


async def close_after(request: web.BaseRequest, response: web.StreamResponse) -> web.StreamResponse:
    """The answer to a request whose body stalled: sent, then the connection
    closed at once. aiohttp would otherwise linger up to 10 s reading a body
    that has stopped coming."""
    if request.get(STALLED) and not response.prepared:
        response.force_close()
        await response.prepare(request)
        await response.write_eof()
        request.protocol.force_close()
    return response
