"""Protos in, domain values out, and back: the API's messages (the gRPC
wire's, and over HTTP their JSON mapping) as the domain's values; the one
place that knows both sides' shapes."""

from __future__ import annotations

import dataclasses

from codeximage.v1 import image_service_pb2 as pb
from google.protobuf import timestamp_pb2

from codex_image_server.dataplane.generation import ImageEvent, ProgressEvent, SummaryEvent
from codex_image_server.dataplane.service import RequestDetail
from codex_image_server.engine.accounts import AccountState
from codex_image_server.finishing import transparency
from codex_image_server.request.params import GenerateParams, ReferenceInput
from codex_image_server.store import Query, RequestRecord, StoredImage

_STAGES = {
    "queued": pb.Progress.STAGE_QUEUED,
    "candidate_started": pb.Progress.STAGE_CANDIDATE_STARTED,
    "codex_phase": pb.Progress.STAGE_CODEX_PHASE,
    "candidate_finished": pb.Progress.STAGE_CANDIDATE_FINISHED,
}


_ALPHA_SOURCES = {
    transparency.IMAGE_MODEL: pb.ALPHA_SOURCE_IMAGE_MODEL,
    transparency.KEYED_MATTE: pb.ALPHA_SOURCE_KEYED_MATTE,
}
_USAGE_FIELDS = set(pb.TokenUsage.DESCRIPTOR.fields_by_name)


def timestamp(unix_ms: int) -> timestamp_pb2.Timestamp | None:
    if not unix_ms:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromMilliseconds(unix_ms)
    return ts


def _reference_use(use) -> pb.ReferenceUse:
    fields = use if isinstance(use, dict) else dataclasses.asdict(use)
    return pb.ReferenceUse(**fields)


def image_message(img: StoredImage) -> pb.Image:
    # resolved_size is the stored image's real size everywhere (records
    # written before exact delivered sizes kept the asked-for size there).
    return pb.Image(
        id=img.id,
        request_id=img.request_id,
        index=img.index,
        label=img.label,
        mime_type=img.mime_type,
        width=img.width,
        height=img.height,
        byte_size=img.byte_size,
        sha256=img.sha256,
        revised_prompt=img.revised_prompt,
        file_path=f"/v1/images/{img.id}/file",
        thread_id=img.thread_id,
        resolved_size=f"{img.width}x{img.height}",
        duration_ms=img.duration_ms,
        create_time=timestamp(img.created_unix_ms),
        prompt=img.prompt,
        requested_size=img.requested_size,
        aspect=img.aspect,
        quality=img.quality,
        output_format=img.output_format,
        target_size=img.target_size or img.resolved_size,
        aspect_ratio=img.aspect_ratio,
        aspect_source=img.aspect_source,
        fit=img.fit,
        native_width=img.native_width or img.width,
        native_height=img.native_height or img.height,
        resized=img.resized,
        enlarged=img.enlarged,
        references=[_reference_use(u) for u in img.references],
        key_name=img.key_name,
        account=img.account,
        background=img.background,
        alpha_source=_ALPHA_SOURCES.get(img.alpha_source, pb.ALPHA_SOURCE_UNSPECIFIED),
        transparency=pb.TransparencyCheck(**img.transparency) if img.transparency else None,
        usage=pb.TokenUsage(**{k: v for k, v in img.usage.items() if k in _USAGE_FIELDS})
        if img.usage
        else None,
    )


def account_message(a: AccountState) -> pb.AccountStatus:
    return pb.AccountStatus(
        name=a.name,
        codex_home=str(a.home),
        found=a.readiness.found,
        logged_in=a.readiness.logged_in or a.readiness.custom_provider,
        in_use=a.in_use,
        limit=a.limit,
        exhausted_until=timestamp(int(a.exhausted_until * 1000)),
        ready=a.ready,
    )


def request_message(r: RequestRecord) -> pb.RequestRecord:
    return pb.RequestRecord(
        request_id=r.request_id,
        status=r.status,
        error_reason=r.error_reason,
        error_message=r.error_message,
        key_name=r.key_name,
        surface=r.surface,
        prompt=r.prompt,
        count=r.count,
        requested_size=r.requested_size,
        resolved_size=r.resolved_size,
        aspect=r.aspect,
        quality=r.quality,
        output_format=r.output_format,
        reference_count=r.reference_count,
        create_time=timestamp(r.created_unix_ms),
        end_time=timestamp(r.ended_unix_ms),
        queue_wait_ms=r.queue_wait_ms,
        codex_ms=r.codex_ms,
        duration_ms=r.duration_ms,
        accounts=list(r.accounts),
        image_ids=list(r.image_ids),
    )


def request_detail(detail: RequestDetail) -> pb.GetRequestResponse:
    out = pb.GetRequestResponse(
        request=request_message(detail.record), images=[image_message(i) for i in detail.images]
    )
    if detail.key_usage is not None:
        u = detail.key_usage
        out.key_usage.CopyFrom(
            pb.KeyUsage(
                key_name=u.key_name,
                images_today=u.images_today,
                images_per_day=u.images_per_day,
                concurrent_requests=u.concurrent,
                max_concurrent_requests=u.max_concurrent,
            )
        )
    return out


def event_message(event) -> pb.GenerateResponse:
    if isinstance(event, ProgressEvent):
        return pb.GenerateResponse(
            progress=pb.Progress(
                stage=_STAGES[event.stage],
                candidate_index=event.candidate_index or 0,
                phase=event.phase,
                detail=event.detail,
                queue_position=event.queue_position,
                elapsed_ms=event.elapsed_ms,
            )
        )
    if isinstance(event, ImageEvent):
        return pb.GenerateResponse(image=image_message(event.image))
    assert isinstance(event, SummaryEvent)
    return pb.GenerateResponse(
        summary=pb.GenerateSummary(
            request_id=event.request_id,
            status=event.status,
            model=event.model,
            backend=event.backend,
            requested_size=event.requested_size,
            resolved_size=event.resolved_size,
            quality=event.quality,
            output_format=event.output_format,
            image_ids=list(event.image_ids),
            duration_ms=event.duration_ms,
            target_size=event.target_size,
            aspect_ratio=event.aspect_ratio,
            aspect_source=event.aspect_source,
            fit=event.fit,
            references=[_reference_use(u) for u in event.references],
            background=event.background,
        )
    )


@dataclasses.dataclass(frozen=True)
class WithImages:
    """A GenerateRequest without its reference images, and those images
    beside it: over gRPC views into the bytes it came in (grpc_api/wire.py),
    from the /v1 shim the bytes it decoded, never copied into the message."""

    message: pb.GenerateRequest
    images: list

    def ByteSize(self) -> int:  # noqa: N802 - protobuf's name: read wherever a message's is
        """The size of the whole request on the wire, images included."""
        total = self.message.ByteSize()
        for reference, image in zip(self.message.references, self.images, strict=True):
            if len(image):
                before = reference.ByteSize()
                after = before + 1 + _varint_size(len(image)) + len(image)
                total += after - before + _varint_size(after) - _varint_size(before)
        return total


def _varint_size(n: int) -> int:
    return max(1, (n.bit_length() + 6) // 7)


def params(received: pb.GenerateRequest | WithImages) -> GenerateParams:
    if isinstance(received, WithImages):
        request, images = received.message, received.images
    else:
        request, images = received, [r.image for r in received.references]
    canvas = request.canvas_size
    return GenerateParams(
        prompt=request.prompt,
        count=request.count,
        size=request.size,
        aspect=request.aspect,
        quality=request.quality,
        output_format=request.output_format,
        request_id=request.request_id,
        references=tuple(
            ReferenceInput(image, r.mime_type, r.label, r.source, r.width, r.height)
            for r, image in zip(request.references, images, strict=True)
        ),
        canvas_size=(canvas.width, canvas.height) if request.HasField("canvas_size") else None,
        fit=request.fit,
        background=request.background,
        output_compression=request.output_compression
        if request.HasField("output_compression")
        else None,
    )


def _ms(request, field: str) -> int:
    return getattr(request, field).ToMilliseconds() if request.HasField(field) else 0


def query(request) -> Query:
    """ListImagesRequest or ListRequestsRequest -> Query."""
    return Query(
        page_size=request.page_size,
        page_token=request.page_token,
        start_unix_ms=_ms(request, "start_time"),
        end_unix_ms=_ms(request, "end_time"),
        request_id=request.request_id,
        key_name=request.key_name,
        prompt_contains=request.prompt_contains,
        status=getattr(request, "status", ""),
    )
