"""ImageService over gRPC: a thin adapter from protos to the domain and back."""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import inspect
import time

import grpc
from codeximage.v1 import image_service_pb2 as pb
from codeximage.v1 import image_service_pb2_grpc as pb_grpc
from google.protobuf import timestamp_pb2

from .. import frozen, references, sizes
from ..blocking import Blocking
from ..engine import Engine
from ..errors import Kind, ServiceError
from ..idle import IdleTimer
from ..generation import BACKEND, MODEL, Generation, ImageEvent, ProgressEvent, SummaryEvent
from ..logs import log
from ..output_store import OutputStore, StoredImage
from ..request import OUTPUT_FORMATS, QUALITIES, GenerateParams, MAX_COUNT, ReferenceInput
from ..settings import Settings
from ..slots import Slots
from ..validation import validate
from . import auth
from .status import internal_error, to_grpc_status

CHUNK_BYTES = 64 * 1024
READ_BYTES = 16 * CHUNK_BYTES  # one trip to the blocking pool per 1 MiB read
REFERENCE_MIME_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")

_STAGES = {
    "queued": pb.Progress.STAGE_QUEUED,
    "candidate_started": pb.Progress.STAGE_CANDIDATE_STARTED,
    "codex_phase": pb.Progress.STAGE_CODEX_PHASE,
    "candidate_finished": pb.Progress.STAGE_CANDIDATE_FINISHED,
}


def _reference_use(use) -> pb.ReferenceUse:
    fields = use if isinstance(use, dict) else dataclasses.asdict(use)
    return pb.ReferenceUse(**fields)


def image_message(img: StoredImage) -> pb.Image:
    created = timestamp_pb2.Timestamp()
    created.FromMilliseconds(img.created_unix_ms)
    # resolved_size is the stored image's real size everywhere (records
    # written before issue 8 kept the asked-for size there).
    return pb.Image(
        id=img.id, request_id=img.request_id, index=img.index, label=img.label, mime_type=img.mime_type,
        width=img.width, height=img.height, byte_size=img.byte_size, sha256=img.sha256,
        revised_prompt=img.revised_prompt, file_path=f"/v1/images/{img.id}/file", thread_id=img.thread_id,
        resolved_size=f"{img.width}x{img.height}", duration_ms=img.duration_ms, create_time=created,
        prompt=img.prompt, requested_size=img.requested_size, aspect=img.aspect, quality=img.quality,
        output_format=img.output_format, target_size=img.target_size or img.resolved_size,
        aspect_ratio=img.aspect_ratio, aspect_source=img.aspect_source, fit=img.fit,
        native_width=img.native_width or img.width, native_height=img.native_height or img.height,
        resized=img.resized, enlarged=img.enlarged, references=[_reference_use(u) for u in img.references])


def _event_message(event) -> pb.GenerateResponse:
    if isinstance(event, ProgressEvent):
        return pb.GenerateResponse(progress=pb.Progress(
            stage=_STAGES[event.stage], candidate_index=event.candidate_index or 0, phase=event.phase,
            detail=event.detail, queue_position=event.queue_position, elapsed_ms=event.elapsed_ms))
    if isinstance(event, ImageEvent):
        return pb.GenerateResponse(image=image_message(event.image))
    assert isinstance(event, SummaryEvent)
    return pb.GenerateResponse(summary=pb.GenerateSummary(
        request_id=event.request_id, status=event.status, model=event.model, backend=event.backend,
        requested_size=event.requested_size, resolved_size=event.resolved_size, quality=event.quality,
        output_format=event.output_format, image_ids=list(event.image_ids), duration_ms=event.duration_ms,
        target_size=event.target_size, aspect_ratio=event.aspect_ratio, aspect_source=event.aspect_source,
        fit=event.fit, references=[_reference_use(u) for u in event.references]))


def _params(request: pb.GenerateRequest) -> GenerateParams:
    canvas = request.canvas_size
    return GenerateParams(
        prompt=request.prompt, count=request.count, size=request.size, aspect=request.aspect,
        quality=request.quality, output_format=request.output_format, request_id=request.request_id,
        references=tuple(ReferenceInput(r.image, r.mime_type, r.label, r.source, r.width, r.height)
                         for r in request.references),
        canvas_size=(canvas.width, canvas.height) if request.HasField("canvas_size") else None,
        fit=request.fit)


async def _abort(context, exc: Exception, method_name: str) -> None:
    """ServiceError -> its status; anything else -> INTERNAL without a trace."""
    if not isinstance(exc, ServiceError):
        log("rpc.crashed", level="error", method=method_name, error_type=type(exc).__name__)
        exc = internal_error()
    status = to_grpc_status(exc)
    await context.abort(status.code, status.details, status.trailing_metadata)


_DONE = object()


def _next(iterator):
    return next(iterator, _DONE)


def _errors_to_status(method):
    """A unary RPC: the API-key check, then the method, every failure mapped to
    a rich status. A plain (sync) method runs in the blocking pool."""
    is_async = inspect.iscoroutinefunction(method)

    @functools.wraps(method)
    async def wrapper(self, request, context):
        try:
            auth.check(context.invocation_metadata(), self._settings.api_keys)
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
            auth.check(context.invocation_metadata(), self._settings.api_keys)
            with IdleTimer(self._settings.download_idle_timeout_ms / 1000, method.__name__) as idle:
                async with contextlib.aclosing(_responses(self, method, request, context)) as responses:
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
    if inspect.isasyncgenfunction(method):
        async with contextlib.aclosing(method(self, request, context)) as responses:
            async for response in responses:
                yield response
        return
    responses = method(self, request, context)
    try:
        while (response := await self._blocking.run(_next, responses)) is not _DONE:
            yield response
    finally:
        responses.close()


class ImageServicer(pb_grpc.ImageServiceServicer):
    """Async methods run on the event loop and must not block it; blocking
    work goes through `self._blocking` (a bounded pool)."""

    def __init__(self, settings: Settings, engine: Engine, store: OutputStore, slots: Slots,
                 blocking: Blocking):
        self._settings = settings
        self._engine = engine
        self._store = store
        self._slots = slots
        self._blocking = blocking
        self._capabilities = frozen.freeze(self._build_capabilities(settings))

    @_stream_errors_to_status
    async def Generate(self, request, context):
        started = time.monotonic()
        params = _params(request)
        # The reference bytes now live in `params` alone: one copy less in memory per request.
        request.ClearField("references")
        # References are decoded by Pillow: off the loop.
        spec = await self._blocking.run(validate, params, self._settings)
        del params
        generation = Generation(spec, self._engine, self._store, self._slots,
                                self._settings.state_dir / "work", self._settings.generation_timeout_ms / 1000,
                                self._blocking)
        # Fires on cancel, deadline and normal completion alike: cancel() is idempotent.
        context.add_done_callback(lambda _: generation.cancel("call ended"))
        fields = dict(request_id=spec.request_id, count=spec.count, size=spec.size.text,
                      quality=spec.quality, output_format=spec.output_format,
                      references=len(spec.references), prompt_chars=len(spec.prompt))
        log("generate.start", **fields)
        del spec  # the generation holds it, and lets go of the reference bytes once they are on disk
        outcome, images = "error", 0
        try:
            async with contextlib.aclosing(generation.events()) as events:
                async for event in events:
                    if isinstance(event, ImageEvent):
                        images += 1
                    yield _event_message(event)
            outcome = "completed"
        except ServiceError as exc:
            outcome = exc.reason.lower()
            raise
        finally:
            if generation.cancelled and outcome == "error":
                outcome = "cancelled"
            log("generate.end", outcome=outcome, images=images,
                duration_ms=int((time.monotonic() - started) * 1000), **fields)

    @_errors_to_status
    async def GetCapabilities(self, request, context):
        return self._capabilities

    @staticmethod
    def _build_capabilities(s: Settings) -> pb.GetCapabilitiesResponse:
        """Fixed for the server's life: built once (resolving presets is not free)."""
        return pb.GetCapabilitiesResponse(
            model=MODEL, backend=BACKEND, max_images=MAX_COUNT, output_formats=list(OUTPUT_FORMATS),
            qualities=list(QUALITIES), size_options=list(sizes.SIZE_OPTIONS),
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
            auth_required=s.auth_required, generation_timeout_ms=s.generation_timeout_ms,
            presets=[pb.SizePreset(name=p.name, max_edge=p.max_edge, max_pixels=p.max_pixels)
                     for p in sizes.PRESETS.values()])

    @_errors_to_status
    async def Health(self, request, context):
        # The last probe's answer: a probe spawns codex, and Health must be
        # answered from the loop at once (a watcher keeps it fresh).
        ready = self._engine.readiness.cached() or await self._blocking.run(self._engine.readiness.get)
        in_use, free, queued = self._slots.snapshot()
        return pb.HealthResponse(
            status="ok" if ready.ready else "unavailable", ready=ready.ready, backend=BACKEND, model=MODEL,
            auth_required=self._settings.auth_required,
            generation_timeout_ms=self._settings.generation_timeout_ms,
            codex=pb.CodexStatus(found=ready.found, path=ready.path, version=ready.version,
                                 logged_in=ready.logged_in, custom_provider=ready.custom_provider),
            slots=pb.SlotStatus(in_use=in_use, free=free, limit=self._slots.limit, queued=queued,
                                queue_limit=self._slots.queue_limit),
            problem=ready.problem)

    @_errors_to_status
    async def GetImage(self, request, context):
        record = await self._blocking.run(self._store.get, request.image_id)
        return pb.GetImageResponse(image=image_message(record))

    @_stream_errors_to_status
    async def GetImageFile(self, request, context):
        """Chunks of CHUNK_BYTES, read 1 MiB at a time off the loop."""
        record = await self._blocking.run(self._store.get, request.image_id)
        f = await self._blocking.run(open, self._store.path(record), "rb")
        try:
            first = True
            while block := await self._blocking.run(f.read, READ_BYTES):
                for at in range(0, len(block), CHUNK_BYTES):
                    chunk = block[at:at + CHUNK_BYTES]
                    if first:
                        first = False
                        yield pb.GetImageFileResponse(content_type=record.mime_type, total_size=record.byte_size,
                                                      sha256=record.sha256, data=chunk)
                    else:
                        yield pb.GetImageFileResponse(data=chunk)
            if first:  # an empty file still says what it is
                yield pb.GetImageFileResponse(content_type=record.mime_type, total_size=0, sha256=record.sha256)
        finally:
            f.close()
