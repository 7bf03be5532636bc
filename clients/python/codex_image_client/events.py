"""Typed events of a Generate stream: one class per kind, so callers can
`match` on them instead of poking at a protobuf oneof."""

from __future__ import annotations

import dataclasses

from codeximage.v1 import image_service_pb2 as pb


@dataclasses.dataclass(frozen=True)
class Progress:
    stage: str  # "QUEUED", "CANDIDATE_STARTED", "CODEX_PHASE", "CANDIDATE_FINISHED"
    candidate_index: int | None  # None for request-wide stages (QUEUED)
    phase: str
    detail: str
    queue_position: int
    elapsed_ms: int


@dataclasses.dataclass(frozen=True)
class ImageReady:
    image: pb.Image  # metadata only; fetch the bytes with Client.download


@dataclasses.dataclass(frozen=True)
class Summary:
    summary: pb.GenerateSummary


Event = Progress | ImageReady | Summary

_REQUEST_WIDE = {pb.Progress.STAGE_QUEUED, pb.Progress.STAGE_UNSPECIFIED}


def _stage_name(stage: int) -> str:
    try:
        return pb.Progress.Stage.Name(stage).removeprefix("STAGE_")
    except ValueError:  # a stage added after this client was built
        return f"STAGE_{stage}"


def from_response(response: pb.GenerateResponse) -> Event | None:
    """The typed event for one stream message; None for an event kind this
    client does not know yet (a newer server), so old clients keep working."""
    kind = response.WhichOneof("event")
    if kind == "progress":
        p = response.progress
        return Progress(
            stage=_stage_name(p.stage),
            candidate_index=None if p.stage in _REQUEST_WIDE else p.candidate_index,
            phase=p.phase,
            detail=p.detail,
            queue_position=p.queue_position,
            elapsed_ms=p.elapsed_ms,
        )
    if kind == "image":
        return ImageReady(response.image)
    if kind == "summary":
        return Summary(response.summary)
    return None
