"""The messages of SubmitGeneration and google.longrunning.Operations: a
stored operation as an `Operation` (its `error` the API's google.rpc.Status),
an operation's name, and the codec the runner stores GenerateRequests with.
The handlers (handlers.py) answer with these on every surface."""

from __future__ import annotations

import json
import re

from codeximage.v1 import image_service_pb2 as pb
from google.longrunning import operations_proto_pb2 as lro
from google.protobuf import json_format

from codex_image_server.dataplane import convert
from codex_image_server.dataplane.rpc_status import to_status_proto
from codex_image_server.errors import FieldViolation, invalid
from codex_image_server.operations import webhooks
from codex_image_server.operations.runner import error_of

OPERATIONS_SERVICE = lro.DESCRIPTOR.services_by_name["Operations"]
NAME_PREFIX = "operations/"
_NAME = re.compile(r"operations/([A-Za-z0-9._-]{1,64})")
_STATES = {
    "queued": pb.GenerationMetadata.STATE_QUEUED,
    "running": pb.GenerationMetadata.STATE_RUNNING,
    "succeeded": pb.GenerationMetadata.STATE_SUCCEEDED,
    "failed": pb.GenerationMetadata.STATE_FAILED,
    "cancelled": pb.GenerationMetadata.STATE_CANCELLED,
}


class GenerateRequestCodec:
    """The domain's view of a stored GenerateRequest (protobuf bytes)."""

    @staticmethod
    def params(request: bytes):
        return convert.params(pb.GenerateRequest.FromString(request))

    @staticmethod
    def differing_field(old: bytes, new: bytes) -> str | None:
        """The first field in which the two requests differ, or None."""
        a, b = pb.GenerateRequest.FromString(old), pb.GenerateRequest.FromString(new)
        for field in pb.GenerateRequest.DESCRIPTOR.fields:
            if field.has_presence and a.HasField(field.name) != b.HasField(field.name):
                return field.name
            if getattr(a, field.name) != getattr(b, field.name):
                return field.name
        return None

    @staticmethod
    def result(images: list, summary) -> bytes:
        result = pb.GenerationResult(images=[convert.image_message(i) for i in images])
        if summary is not None:
            result.summary.CopyFrom(convert.event_message(summary).summary)
        return result.SerializeToString()


def request_id_of(name: str) -> str:
    """`operations/{request_id}`, else INVALID_ARGUMENT naming `name`."""
    found = _NAME.fullmatch(name)
    if found is None:
        raise invalid(
            [
                FieldViolation(
                    "name",
                    "must be operations/{request_id}: 1-64 letters, digits, '.', "
                    "'_' or '-' after the slash",
                    "INVALID_OPERATION_NAME",
                )
            ]
        )
    return found.group(1)


def operation_message(record, queue_position: int = 0) -> lro.Operation:
    metadata = pb.GenerationMetadata(
        state=_STATES[record.state],
        request_id=record.request_id,
        queue_position=queue_position,
        attempts=record.attempts,
        key_name=record.key_name,
    )
    for name in ("create", "start", "end"):
        ts = convert.timestamp(
            getattr(
                record,
                ("started" if name == "start" else "ended" if name == "end" else "created")
                + "_unix_ms",
            )
        )
        if ts is not None:
            getattr(metadata, f"{name}_time").CopyFrom(ts)
    for candidate in json.loads(record.progress) if record.progress else ():
        metadata.candidates.append(pb.CandidateProgress(**candidate))
    if record.webhook:
        sent = json.loads(record.webhook)
        metadata.webhook.CopyFrom(
            pb.WebhookDelivery(**{k: sent[k] for k in webhooks.SHOWN if k in sent})
        )
    operation = lro.Operation(name=NAME_PREFIX + record.request_id, done=record.done)
    operation.metadata.Pack(metadata)
    if record.state == "succeeded":
        operation.response.Pack(pb.GenerationResult.FromString(record.result or b""))
    elif record.done and (error := error_of(record)) is not None:
        operation.error.CopyFrom(to_status_proto(error))
    return operation


def operation_json(record) -> dict:
    """The operation as the HTTP surface renders it (a webhook's `data`)."""
    return json_format.MessageToDict(operation_message(record), preserving_proto_field_name=True)


def timeout_s(request) -> float | None:
    if not request.HasField("timeout"):
        return None
    seconds = request.timeout.ToNanoseconds() / 1e9
    if seconds < 0:
        raise invalid([FieldViolation("timeout", "must not be negative", "INVALID_TIMEOUT")])
    return seconds
