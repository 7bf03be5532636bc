"""ImageService over gRPC: a thin adapter from protos to the domain and back."""
from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect

import grpc
from codeximage.v1 import image_service_pb2 as pb, image_service_pb2_grpc as pb_grpc
from google.longrunning import operations_proto_pb2 as lro
from google.protobuf import message_factory
from google.protobuf.message import DecodeError

from codex_image_server.dataplane import frozen
from codex_image_server.dataplane.generation import BACKEND, MODEL
from codex_image_server.dataplane.service import Caller, Service
from codex_image_server.engine import versions
from codex_image_server.errors import Kind, ServiceError
from codex_image_server.finishing import transparency
from codex_image_server.grpc_api import auth, convert, wire
from codex_image_server.grpc_api.status import internal_error, to_grpc_status
from codex_image_server.grpc_api.wire import Received
from codex_image_server.request import references, sizes
from codex_image_server.request.params import MAX_COUNT, OUTPUT_FORMATS, QUALITIES
from codex_image_server.runtime.blocking import Blocking
from codex_image_server.runtime.idle import IdleTimer
from codex_image_server.runtime.logs import log
from codex_image_server.settings import Settings
from codex_image_server.version import __version__

# A Python gRPC stream is bound by its per-message cost, not by bytes: 1 MiB
# chunks (well under every client's 4 MiB default receive limit) move a large
# image several times faster than 64 KiB ones did.
CHUNK_BYTES = 1024 * 1024
REFERENCE_MIME_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")

SURFACE_HEADER = "x-codex-image-surface"
SURFACES = ("grpc", "http", "openai", "mcp")  # as the history records them


async def _abort(context, exc: Exception, method_name: str) -> None:
    """ServiceError -> its status; anything else -> INTERNAL without a trace."""
    if not isinstance(exc, ServiceError):
        log("rpc.crashed", level="error", method=method_name, error_type=type(exc).__name__)
        exc = internal_error()
    status = to_grpc_status(exc)
    await context.abort(status.code, status.details, status.trailing_metadata)


_DONE = object()
# ImageService's and google.longrunning.Operations' (grpc_api/operations.py): no name is in both.
_REQUEST_TYPES = {m.name: message_factory.GetMessageClass(m.input_type)
                  for service in (pb.DESCRIPTOR.services_by_name["ImageService"],
                                  lro.DESCRIPTOR.services_by_name["Operations"])
                  for m in service.methods}


def parsed(request, method_name: str):
    """Over gRPC the request arrives as bytes, parsed here only after the
    API-key check: a stranger's bytes are never read, and bytes that are not
    the message get INVALID_ARGUMENT rather than grpcio's INTERNAL. The
    in-process shim hands over a message."""
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
        raise ServiceError(Kind.INVALID_ARGUMENT, "INVALID_REQUEST_BYTES",
                           "the request bytes do not decode as this method's protobuf message") from None


def _next(iterator):
    return next(iterator, _DONE)


def _errors_to_status(method):
    """A unary RPC: the API-key check, then the method, every failure mapped to
    a rich status. A plain (sync) method runs in the blocking pool."""
    is_async, name = inspect.iscoroutinefunction(method), method.__name__

    @functools.wraps(method)
    async def wrapper(self, request, context):
        try:
            auth.check(context.invocation_metadata(), self._service.keyring)
            request = parsed(request, name)
            if is_async:
                return await method(self, request, context)
            return await self._blocking.run(method, self, request, context)
        except Exception as exc:  # noqa: BLE001 - mapped, never leaked
            await _abort(context, exc, method.__name__)
    return wrapper


def _stream_errors_to_status(method):
    """A server-streaming RPC, like `_errors_to_status`. The method is an async
    generator (iterated on the loop) or a plain one (advanced in the blocking
    pool); each response is written with `context.write`, which waits for the
    peer (flow control). A peer that takes nothing for the download idle
    timeout is dropped with CANCELLED, so no call waits on it forever."""
    @functools.wraps(method)
    async def wrapper(self, request, context):
        idle = None
        try:
            auth.check(context.invocation_metadata(), self._service.keyring)
            responses = _responses(self, method, parsed(request, method.__name__), context)
            with IdleTimer(self._settings.download_idle_timeout_ms / 1000, method.__name__) as idle:
                async with contextlib.aclosing(responses) as responses:
                    async for response in responses:
                        with idle.waiting():
                            await context.write(response)
        except asyncio.CancelledError:
            if idle is None or not idle.fired:
                raise
            await context.abort(grpc.StatusCode.CANCELLED, "the reader took nothing for "
                                f"{self._settings.download_idle_timeout_ms} ms; dropped")
        except Exception as exc:  # noqa: BLE001 - mapped, never leaked
            if isinstance(exc, ServiceError) and exc.kind is Kind.CANCELLED and context.cancelled():
                return  # the caller is gone; there is nobody to tell
            await _abort(context, exc, method.__name__)
    return wrapper


async def _responses(self, method, request, context):
    # The method alone keeps the request, so it can let it go early (Generate
    # does, once it has taken the reference bytes out).
    responses = method(self, request, context)
    del request
    if inspect.isasyncgenfunction(method):
        async with contextlib.aclosing(responses) as responses:
            async for response in responses:
                yield response
        return
    try:
        while (response := await self._blocking.run(_next, responses)) is not _DONE:
            yield response
    finally:
        responses.close()


class ImageServicer(pb_grpc.ImageServiceServicer):
    """Async methods run on the event loop and must not block it; blocking
    work goes through `self._blocking` (a bounded pool)."""

    def __init__(self, settings: Settings, service: Service, blocking: Blocking):
        self._settings = settings
        self._service = service
        self._engine = service.engine
        self._slots = service.slots
        self._blocking = blocking
        self._capabilities = frozen.freeze(self._build_capabilities(settings, service.keyring.required))
        self._health: tuple[tuple, object] | None = None  # (what it says, the answer)

    def shut_down(self) -> None:
        self._service.shut_down()

    @property
    def keyring(self):
        return self._service.keyring

    def _caller(self, context) -> Caller:
        """Who calls: the wrapper's auth check has admitted the call; this names its key."""
        metadata = context.invocation_metadata()
        surface = next((v for k, v in metadata or () if k == SURFACE_HEADER), "grpc")
        return Caller(auth.check(metadata, self._service.keyring), surface if surface in SURFACES else "grpc")

    @_stream_errors_to_status
    async def Generate(self, request, context):
        params = convert.params(request)
        # The reference bytes now live in `params` alone: the message (and
        # any copy of them) goes now, not when the call ends.
        del request
        call = await self._service.generate(params, self._caller(context))
        del params
        # Fires on cancel, deadline and normal completion alike: cancel() is idempotent.
        context.add_done_callback(lambda _: call.cancel("call ended"))
        async with contextlib.aclosing(call.events()) as events:
            async for event in events:
                yield convert.event_message(event)

    @_errors_to_status
    async def GetCapabilities(self, request, context):
        if self._capabilities.auth_required == self._service.keyring.required:
            return self._capabilities
        # The keys file was reloaded: say whether a key is needed now.
        return self._build_capabilities(self._settings, self._service.keyring.required)

    @staticmethod
    def _build_capabilities(s: Settings, auth_required: bool) -> pb.GetCapabilitiesResponse:
        """Fixed for the server's life: built once (resolving presets is not free)."""
        return pb.GetCapabilitiesResponse(
            model=MODEL, backend=BACKEND, max_images=MAX_COUNT, output_formats=list(OUTPUT_FORMATS),
            qualities=list(QUALITIES), backgrounds=list(transparency.BACKGROUNDS),
            size_options=list(sizes.SIZE_OPTIONS),
            ratio_options=list(sizes.RATIO_OPTIONS), aspect_names=list(sizes.NAMED_ASPECTS),
            aspect_options=[pb.AspectOption(name=o.name, kind=o.kind, aliases=list(o.aliases),
                                            description=o.description) for o in sizes.aspect_options()],
            fits=list(sizes.FITS),
            size_constraints=pb.SizeConstraints(
                custom_size=True, max_edge=sizes.MAX_EDGE, max_pixels=sizes.MAX_PIXELS,
                min_pixels=sizes.MIN_PIXELS, multiple_of=sizes.MULTIPLE, max_ratio=f"{sizes.MAX_RATIO}:1"),
            high_resolution_presets=pb.HighResolutionPresets(**{
                name: "%dx%d" % sizes.resolve_preset(sizes.PRESETS["4K"], ratio)
                for name, ratio in sizes.NAMED_ASPECTS.items()}),
            references=pb.ReferencePolicy(mode="original_image", max_images=s.max_references,
                                          max_bytes=s.max_reference_bytes,
                                          mime_types=list(REFERENCE_MIME_TYPES),
                                          max_originals=references.ORIGINALS_WITH_SHEET,
                                          overflow_mode="contact_sheet"),
            auth_required=auth_required, generation_timeout_ms=s.generation_timeout_ms,
            presets=[pb.SizePreset(name=p.name, max_edge=p.max_edge, max_pixels=p.max_pixels)
                     for p in sizes.PRESETS.values()])

    @_errors_to_status
    async def Health(self, request, context):
        # The last probe's answer: a probe spawns codex, and Health must be
        # answered from the loop at once (a watcher keeps it fresh).
        ready = self._engine.readiness.cached()
        if ready is None:
            ready = await self._blocking.run(self._engine.readiness.get)
        pool = self._engine.accounts
        rows = pool.snapshot(cached=True) or await self._blocking.run(pool.snapshot)
        assert rows is not None  # only a cached snapshot can be missing
        slots = self._slots.snapshot()
        facts = (ready, slots, rows, self._service.keyring.required)
        if self._health is not None and self._health[0] == facts:
            return self._health[1]  # unchanged: the same (frozen) answer, encoded once
        in_use, free, queued = slots
        accounts = pool.states_of(rows)
        answer = frozen.freeze(pb.HealthResponse(
            status="ok" if ready.ready else "unavailable", ready=ready.ready, backend=BACKEND, model=MODEL,
            auth_required=self._service.keyring.required,
            generation_timeout_ms=self._settings.generation_timeout_ms,
            codex=pb.CodexStatus(found=ready.found, path=ready.path, version=ready.version,
                                 logged_in=ready.logged_in, custom_provider=ready.custom_provider),
            slots=pb.SlotStatus(in_use=in_use, free=free, limit=self._slots.limit, queued=queued,
                                queue_limit=self._slots.queue_limit),
            problem=ready.said, server_version=__version__,
            codex_version=ready.version_number, codex_version_tested=ready.version_tested,
            codex_tested_versions=versions.TESTED,
            accounts=[convert.account_message(a) for a in accounts]))
        if self._health is not None:
            frozen.thaw(self._health[1])
        self._health = (facts, answer)
        return answer

    @_errors_to_status
    async def GetImage(self, request, context):
        record = await self._blocking.run(self._service.get_image, request.image_id, self._caller(context))
        return pb.GetImageResponse(image=convert.image_message(record))

    # Plain methods: the wrapper runs them in the blocking pool (SQLite).

    @_errors_to_status
    def ListImages(self, request, context):
        page = self._service.list_images(convert.query(request), self._caller(context))
        return pb.ListImagesResponse(images=[convert.image_message(i) for i in page.items],
                                     next_page_token=page.next_page_token)

    @_errors_to_status
    def DeleteImage(self, request, context):
        self._service.delete_image(request.image_id, self._caller(context))
        return pb.DeleteImageResponse()

    @_errors_to_status
    def ListRequests(self, request, context):
        page = self._service.list_requests(convert.query(request), self._caller(context))
        return pb.ListRequestsResponse(requests=[convert.request_message(r) for r in page.items],
                                       next_page_token=page.next_page_token)

    @_errors_to_status
    def GetRequest(self, request, context):
        return convert.request_detail(self._service.get_request(request.request_id, self._caller(context)))

    @_stream_errors_to_status
    async def GetImageFile(self, request, context):
        """Chunks of CHUNK_BYTES, each read off the loop while the one before
        it is being sent."""
        record = await self._blocking.run(self._service.get_image, request.image_id, self._caller(context))
        # The path may mean a fetch into the local cache (an object store): off the loop too.
        f = await self._blocking.run(lambda: open(self._service.image_path(record), "rb", buffering=0))
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
                    yield pb.GetImageFileResponse(content_type=record.mime_type, total_size=record.byte_size,
                                                  sha256=record.sha256, data=chunk)
                else:
                    yield pb.GetImageFileResponse(data=chunk)
            if first:  # an empty file still says what it is
                yield pb.GetImageFileResponse(content_type=record.mime_type, total_size=0, sha256=record.sha256)
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
