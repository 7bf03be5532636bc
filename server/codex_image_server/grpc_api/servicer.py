"""ImageService over gRPC: a thin adapter from protos to the domain and back."""
from __future__ import annotations

import functools

from codeximage.v1 import image_service_pb2 as pb
from codeximage.v1 import image_service_pb2_grpc as pb_grpc

from .. import sizes
from ..errors import Kind, ServiceError
from ..generation import BACKEND, MODEL
from ..logs import log
from ..request import OUTPUT_FORMATS, QUALITIES, MAX_COUNT
from ..service import Caller, Service
from ..settings import Settings
from . import convert
from .auth import caller_key
from .status import internal_error, to_grpc_status

SURFACE_HEADER = "x-codex-image-surface"

CHUNK_BYTES = 64 * 1024
REFERENCE_MIME_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")

def _abort(context, exc: Exception, method_name: str) -> None:
    """ServiceError -> its status; anything else -> INTERNAL without a trace."""
    if isinstance(exc, ServiceError):
        context.abort_with_status(to_grpc_status(exc))
    log("rpc.crashed", level="error", method=method_name, error_type=type(exc).__name__)
    context.abort_with_status(to_grpc_status(internal_error()))


def _errors_to_status(method):
    @functools.wraps(method)
    def wrapper(self, request, context):
        try:
            return method(self, request, context)
        except Exception as exc:  # noqa: BLE001 - mapped, never leaked
            _abort(context, exc, method.__name__)
    return wrapper


def _stream_errors_to_status(method):
    @functools.wraps(method)
    def wrapper(self, request, context):
        try:
            yield from method(self, request, context)
        except Exception as exc:  # noqa: BLE001 - mapped, never leaked
            if isinstance(exc, ServiceError) and exc.kind is Kind.CANCELLED and not context.is_active():
                return  # the caller is gone; there is nobody to tell
            _abort(context, exc, method.__name__)
    return wrapper


class ImageServicer(pb_grpc.ImageServiceServicer):
    def __init__(self, settings: Settings, service: Service):
        self._settings = settings
        self._service = service
        self._engine = service.engine
        self._slots = service.slots
        self._capabilities = self._build_capabilities(settings)

    def _caller(self, context) -> Caller:
        metadata = context.invocation_metadata()
        surface = next((v for k, v in metadata or () if k == SURFACE_HEADER), "grpc")
        # The interceptor has admitted the call; this names its key.
        return Caller(caller_key(self._service.keyring, metadata), surface if surface in ("grpc", "http") else "grpc")

    @_stream_errors_to_status
    def Generate(self, request, context):
        call = self._service.generate(convert.params(request), self._caller(context))
        # Fires on cancel, deadline and normal completion alike: cancel() is idempotent.
        context.add_callback(lambda: call.cancel("call ended"))
        for event in call.events():
            yield convert.event_message(event)

    @_errors_to_status
    def GetCapabilities(self, request, context):
        if self._capabilities.auth_required == self._service.keyring.required:
            return self._capabilities
        # The keys file was reloaded: say whether a key is needed now.
        return pb.GetCapabilitiesResponse(**{**{f.name: getattr(self._capabilities, f.name)
                                               for f in self._capabilities.DESCRIPTOR.fields},
                                            "auth_required": self._service.keyring.required})

    def _build_capabilities(self, s: Settings) -> pb.GetCapabilitiesResponse:
        """Fixed for the server's life: built once (resolving presets is not free)."""
        return pb.GetCapabilitiesResponse(
            model=MODEL, backend=BACKEND, max_images=MAX_COUNT, output_formats=list(OUTPUT_FORMATS),
            qualities=list(QUALITIES), size_options=list(sizes.SIZE_OPTIONS),
            ratio_options=list(sizes.RATIO_OPTIONS), aspect_names=list(sizes.NAMED_ASPECTS),
            size_constraints=pb.SizeConstraints(
                custom_size=True, max_edge=sizes.MAX_EDGE, max_pixels=sizes.MAX_PIXELS,
                min_pixels=sizes.MIN_PIXELS, multiple_of=sizes.MULTIPLE, max_ratio=f"{sizes.MAX_RATIO}:1"),
            high_resolution_presets=pb.HighResolutionPresets(**{
                name: "%dx%d" % sizes.resolve_preset(sizes.PRESETS["4K"], ratio)
                for name, ratio in sizes.NAMED_ASPECTS.items()}),
            references=pb.ReferencePolicy(mode="original_image", max_images=s.max_references,
                                          max_bytes=s.max_reference_bytes,
                                          mime_types=list(REFERENCE_MIME_TYPES)),
            auth_required=self._service.keyring.required, generation_timeout_ms=s.generation_timeout_ms,
            presets=[pb.SizePreset(name=p.name, max_edge=p.max_edge, max_pixels=p.max_pixels)
                     for p in sizes.PRESETS.values()])

    @_errors_to_status
    def Health(self, request, context):
        ready = self._engine.readiness.get()
        in_use, free, queued = self._slots.snapshot()
        return pb.HealthResponse(
            status="ok" if ready.ready else "unavailable", ready=ready.ready, backend=BACKEND, model=MODEL,
            auth_required=self._service.keyring.required,
            generation_timeout_ms=self._settings.generation_timeout_ms,
            codex=pb.CodexStatus(found=ready.found, path=ready.path, version=ready.version,
                                 logged_in=ready.logged_in, custom_provider=ready.custom_provider),
            slots=pb.SlotStatus(in_use=in_use, free=free, limit=self._slots.limit, queued=queued,
                                queue_limit=self._slots.queue_limit),
            problem=ready.problem,
            accounts=[convert.account_message(a) for a in self._engine.accounts.states()])

    @_errors_to_status
    def GetImage(self, request, context):
        return pb.GetImageResponse(image=convert.image_message(self._service.get_image(request.image_id)))

    @_errors_to_status
    def ListImages(self, request, context):
        page = self._service.list_images(convert.query(request))
        return pb.ListImagesResponse(images=[convert.image_message(i) for i in page.items],
                                     next_page_token=page.next_page_token)

    @_errors_to_status
    def DeleteImage(self, request, context):
        self._service.delete_image(request.image_id, self._caller(context))
        return pb.DeleteImageResponse()

    @_errors_to_status
    def ListRequests(self, request, context):
        page = self._service.list_requests(convert.query(request))
        return pb.ListRequestsResponse(requests=[convert.request_message(r) for r in page.items],
                                       next_page_token=page.next_page_token)

    @_errors_to_status
    def GetRequest(self, request, context):
        return convert.request_detail(self._service.get_request(request.request_id))

    @_stream_errors_to_status
    def GetImageFile(self, request, context):
        record = self._service.get_image(request.image_id)
        with open(self._service.image_path(record), "rb") as f:
            chunk = f.read(CHUNK_BYTES)
            yield pb.GetImageFileResponse(content_type=record.mime_type, total_size=record.byte_size,
                                          sha256=record.sha256, data=chunk)
            while chunk := f.read(CHUNK_BYTES):
                yield pb.GetImageFileResponse(data=chunk)
