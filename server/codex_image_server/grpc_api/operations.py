"""SubmitGeneration and the standard google.longrunning.Operations service
over gRPC (and, in-process, the /v1 shim): thin conversions between the
protos and the domain's `operations.Operations`, with the same key check
and error mapping as every ImageService call (`_errors_to_status`)."""
from __future__ import annotations

import contextlib
import json
import re

from codeximage.v1 import image_service_pb2 as pb
from google.longrunning import operations_proto_pb2 as lro
from google.protobuf import empty_pb2, json_format

from codex_image_server.errors import FieldViolation, Outcome, invalid
from codex_image_server.grpc_api import convert
from codex_image_server.grpc_api.servicer import (
    ImageServicer,
    _errors_to_status,
    _stream_errors_to_status,
)
from codex_image_server.grpc_api.status import to_status_proto
from codex_image_server.operations.runner import Operations, error_of, new_request_id, parse_filter
from codex_image_server.store.records import Query
from codex_image_server.team.history import now_ms

OPERATIONS_SERVICE = lro.DESCRIPTOR.services_by_name["Operations"]
NAME_PREFIX = "operations/"
_NAME = re.compile(r"operations/([A-Za-z0-9._-]{1,64})")
_STATES = {"queued": pb.GenerationMetadata.STATE_QUEUED, "running": pb.GenerationMetadata.STATE_RUNNING,
           "succeeded": pb.GenerationMetadata.STATE_SUCCEEDED, "failed": pb.GenerationMetadata.STATE_FAILED,
           "cancelled": pb.GenerationMetadata.STATE_CANCELLED}


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
        raise invalid([FieldViolation("name", "must be operations/{request_id}: 1-64 letters, digits, '.', "
                                      "'_' or '-' after the slash", "INVALID_OPERATION_NAME")])
    return found.group(1)


def operation_message(record, queue_position: int = 0) -> lro.Operation:
    metadata = pb.GenerationMetadata(state=_STATES[record.state], request_id=record.request_id,
                                     queue_position=queue_position, attempts=record.attempts,
                                     key_name=record.key_name)
    for name in ("create", "start", "end"):
        ts = convert.timestamp(getattr(record, ("started" if name == "start" else
                                                "ended" if name == "end" else "created") + "_unix_ms"))
        if ts is not None:
            getattr(metadata, f"{name}_time").CopyFrom(ts)
    for candidate in json.loads(record.progress) if record.progress else ():
        metadata.candidates.append(pb.CandidateProgress(**candidate))
    if record.webhook:
        metadata.webhook.CopyFrom(pb.WebhookDelivery(**json.loads(record.webhook)))
    operation = lro.Operation(name=NAME_PREFIX + record.request_id, done=record.done)
    operation.metadata.Pack(metadata)
    if record.state == "succeeded":
        operation.response.Pack(pb.GenerationResult.FromString(record.result or b""))
    elif record.done:
        error = error_of(record)
        assert error is not None  # a finished operation that did not succeed recorded why
        operation.error.CopyFrom(to_status_proto(error))
    return operation


def operation_json(record) -> dict:
    """The operation as the HTTP surface renders it (a webhook's `data`)."""
    return json_format.MessageToDict(operation_message(record), preserving_proto_field_name=True)


def _timeout_s(request) -> float | None:
    if not request.HasField("timeout"):
        return None
    seconds = request.timeout.ToNanoseconds() / 1e9
    if seconds < 0:
        raise invalid([FieldViolation("timeout", "must not be negative", "INVALID_TIMEOUT")])
    return seconds


class Servicer(ImageServicer):
    """ImageService with SubmitGeneration, and google.longrunning.Operations."""

    def __init__(self, settings, service, blocking, operations: Operations):
        super().__init__(settings, service, blocking)
        self.operations = operations

    @_stream_errors_to_status
    async def Generate(self, request, context):
        """A request id of this key's succeeded operation is answered from the
        store; otherwise ImageService's Generate."""
        message = request.message if isinstance(request, convert.WithImages) else request
        if message.request_id:
            stored = await self._blocking.run(self.operations.stored_answer, message.request_id,
                                              self._caller(context))
            if stored is not None:
                result = pb.GenerationResult.FromString(stored)
                for image in result.images:
                    yield pb.GenerateResponse(image=image)
                yield pb.GenerateResponse(summary=result.summary)
                return
        webhook_url, request_id, caller = message.webhook_url, message.request_id, self._caller(context)
        if webhook_url:
            await self._blocking.run(self.operations.check_webhook, webhook_url)
        # The reference bytes live on in Generate's frame alone (it lets them go early).
        generate = ImageServicer.Generate.__wrapped__(self, request, context)
        del request, message
        started, result, outcome = now_ms(), pb.GenerationResult(), Outcome()
        try:
            with outcome:
                async with contextlib.aclosing(generate) as responses:
                    async for response in responses:
                        if webhook_url and response.HasField("image"):
                            result.images.append(response.image)
                        elif webhook_url and response.HasField("summary"):
                            result.summary.CopyFrom(response.summary)
                            request_id = response.summary.request_id
                        yield response
        finally:
            if webhook_url:
                self.operations.generate_ended(request_id, caller, webhook_url, None if outcome.error
                                               else result.SerializeToString(), outcome.error, started)

    @_errors_to_status
    def SubmitGeneration(self, request, context):
        if not request.request_id:
            request.request_id = new_request_id()
        record = self.operations.submit(request.SerializeToString(), convert.params(request),
                                        request.webhook_url, self._caller(context))
        return operation_message(*self.operations.get(record.request_id, self._caller(context)))

    @_errors_to_status
    def GetOperation(self, request, context):
        return operation_message(*self.operations.get(request_id_of(request.name), self._caller(context)))

    @_errors_to_status
    def ListOperations(self, request, context):
        query = Query(page_size=request.page_size, page_token=request.page_token,
                      status=parse_filter(request.filter))
        page = self.operations.list(query, self._caller(context))
        return lro.ListOperationsResponse(operations=[operation_message(r) for r in page.items],
                                          next_page_token=page.next_page_token)

    @_errors_to_status
    def CancelOperation(self, request, context):
        self.operations.cancel(request_id_of(request.name), self._caller(context))
        return empty_pb2.Empty()

    @_errors_to_status
    def DeleteOperation(self, request, context):
        self.operations.delete(request_id_of(request.name), self._caller(context))
        return empty_pb2.Empty()

    @_errors_to_status
    async def WaitOperation(self, request, context):
        request_id, timeout_s = request_id_of(request.name), _timeout_s(request)
        return operation_message(*await self.operations.wait(request_id, timeout_s, self._caller(context)))
