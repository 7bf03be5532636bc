"""ImageService and google.longrunning.Operations over gRPC: a thin adapter.
Each call: the API key checked once (from the metadata) into a Caller, the
bytes parsed, the handler of the same name called (dataplane/handlers.py),
a ServiceError mapped the one gRPC way (status.py). What is gRPC's own stays
here: flow control, the download idle timer, a file sent in chunks."""

from __future__ import annotations

import asyncio
import contextlib

import grpc
from codeximage.v1 import image_service_pb2 as pb
from google.longrunning import operations_proto_pb2 as lro
from google.protobuf import message_factory
from google.protobuf.message import DecodeError

from codex_image_server.dataplane import convert
from codex_image_server.dataplane.handlers import Handlers
from codex_image_server.dataplane.service import Caller
from codex_image_server.errors import Kind, ServiceError
from codex_image_server.grpc_api import wire
from codex_image_server.grpc_api.status import internal_error, to_grpc_status
from codex_image_server.grpc_api.wire import Received
from codex_image_server.runtime.blocking import Blocking
from codex_image_server.runtime.idle import IdleTimer
from codex_image_server.runtime.logs import log
from codex_image_server.settings import Settings
from codex_image_server.team import auth

# A Python gRPC stream is bound by its per-message cost, not by bytes: 1 MiB
# chunks (well under every client's 4 MiB default receive limit) move a large
# image several times faster than 64 KiB ones did.
CHUNK_BYTES = 1024 * 1024

# ImageService's and google.longrunning.Operations': no name is in both.
_REQUEST_TYPES = {
    m.name: message_factory.GetMessageClass(m.input_type)
    for service in (
        pb.DESCRIPTOR.services_by_name["ImageService"],
        lro.DESCRIPTOR.services_by_name["Operations"],
    )
    for m in service.methods
}


async def _abort(context, exc: Exception, method_name: str) -> None:
    """ServiceError -> its status; anything else -> INTERNAL without a trace."""
    if not isinstance(exc, ServiceError):
        log("rpc.crashed", level="error", method=method_name, error_type=type(exc).__name__)
        exc = internal_error()
    status = to_grpc_status(exc)
    await context.abort(status.code, status.details, status.trailing_metadata)


def parsed(request, method_name: str):
    """The request arrives as bytes (boxed, see wire.Received), parsed here
    only after the API-key check: a stranger's bytes are never read, and
    bytes that are not the message get INVALID_ARGUMENT rather than grpcio's
    INTERNAL."""
    if isinstance(request, Received):
        request = request.take()
    if not isinstance(request, bytes):
        return request
    try:
        if method_name == "Generate" and (split := wire.split_references(request)) is not None:
            rest, images = split
            return convert.WithImages(pb.GenerateRequest.FromString(rest), images)
        return _REQUEST_TYPES[method_name].FromString(request)
    except (DecodeError, ValueError, RuntimeError):
        raise ServiceError(
            Kind.INVALID_ARGUMENT,
            "INVALID_REQUEST_BYTES",
            "the request bytes do not decode as this method's protobuf message",
        ) from None


class ImageServicer:
    """`rpc(name)` is the grpc.aio handler of one method; server.py binds
    every method of both services through it."""

    def __init__(self, settings: Settings, handlers: Handlers, blocking: Blocking):
        self._settings = settings
        self._handlers = handlers
        self._blocking = blocking
        self._keyring = handlers.keyring

    def shut_down(self) -> None:
        self._handlers.shut_down()

    def _caller(self, context) -> Caller:
        """The one key check of the call."""
        return Caller(auth.check(context.invocation_metadata(), self._keyring), "grpc")

    def rpc(self, name: str):
        if name == "GetImageFile":
            return self._stream(name, self._image_file)
        if name in self._handlers.streams:
            return self._stream(name, self._handlers.streams[name])
        return self._unary(name, self._handlers.unary[name])

    def _unary(self, name: str, handler):
        async def call(request, context):
            try:
                caller = self._caller(context)
                return await handler(caller, parsed(request, name))
            except Exception as exc:  # noqa: BLE001 - mapped, never leaked
                await _abort(context, exc, name)

        call.__name__ = name
        return call

    def _stream(self, name: str, handler):
        """Each response is written with `context.write`, which waits for the
        peer (flow control). A peer that takes nothing for the download idle
        timeout is dropped with CANCELLED, so no call waits on it forever;
        a peer that goes away cancels this task, and so the handler's stream."""
        idle_ms = self._settings.download_idle_timeout_ms

        async def call(request, context):
            idle = None
            try:
                caller = self._caller(context)
                # The handler alone keeps the request, so it can let it go
                # early (Generate does, once it has taken the reference bytes out).
                responses = handler(caller, parsed(request, name))
                del request
                with IdleTimer(idle_ms / 1000, name) as idle:
                    async with contextlib.aclosing(responses) as responses:
                        async for response in responses:
                            with idle.waiting():
                                await context.write(response)
            except asyncio.CancelledError:
                if idle is None or not idle.fired:
                    raise
                await context.abort(
                    grpc.StatusCode.CANCELLED, f"the reader took nothing for {idle_ms} ms; dropped"
                )
            except Exception as exc:  # noqa: BLE001 - mapped, never leaked
                if (
                    isinstance(exc, ServiceError)
                    and exc.kind is Kind.CANCELLED
                    and context.cancelled()
                ):
                    return  # the caller is gone; there is nobody to tell
                await _abort(context, exc, name)

        call.__name__ = name
        return call

    async def _image_file(self, caller: Caller, request: pb.GetImageFileRequest):
        """Chunks of CHUNK_BYTES, each read off the loop while the one before
        it is being sent."""
        record, path = await self._handlers.image_file(caller, request)
        f = await self._blocking.run(lambda: open(path, "rb", buffering=0))
        reading = None
        try:
            first = True
            reading = asyncio.ensure_future(self._blocking.run(f.read, CHUNK_BYTES))
            # Shielded: a cancelled call leaves the read to finish, and the
            # file is closed only after it (see finally).
            while chunk := await asyncio.shield(reading):
                reading = asyncio.ensure_future(self._blocking.run(f.read, CHUNK_BYTES))
                if first:
                    first = False
                    yield pb.GetImageFileResponse(
                        content_type=record.mime_type,
                        total_size=record.byte_size,
                        sha256=record.sha256,
                        data=chunk,
                    )
                else:
                    yield pb.GetImageFileResponse(data=chunk)
            if first:  # an empty file still says what it is
                yield pb.GetImageFileResponse(
                    content_type=record.mime_type, total_size=0, sha256=record.sha256
                )
        finally:
            if reading is not None and not reading.done():
                # A read still runs in the pool: the file is closed after it,
                # never under it (its descriptor could be reused meanwhile).
                def close_after(done) -> None:
                    if not done.cancelled():
                        done.exception()  # retrieved: no "never retrieved" warning
                    f.close()

                reading.add_done_callback(close_after)
            else:
                f.close()
