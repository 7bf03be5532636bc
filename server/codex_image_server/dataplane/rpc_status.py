"""The API's error model: a domain error as one google.rpc.Status, the
message gRPC carries in its trailers (grpc_api/status.py), the HTTP shim
prints in its error body (codex_image_shim/errors.py) and a failed
operation holds in its `error`, so every surface names the same reason and
fields.

Every error carries an ErrorInfo (reason, domain, metadata); bad input also
carries one BadRequest naming each field; retryable ones a RetryInfo.
"""

from __future__ import annotations

from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from codex_image_server.errors import Kind, ServiceError

DOMAIN = "codex-image-server"

_CODES = {
    Kind.INVALID_ARGUMENT: code_pb2.INVALID_ARGUMENT,
    Kind.NOT_FOUND: code_pb2.NOT_FOUND,
    Kind.FAILED_PRECONDITION: code_pb2.FAILED_PRECONDITION,
    Kind.RESOURCE_EXHAUSTED: code_pb2.RESOURCE_EXHAUSTED,
    Kind.UNAVAILABLE: code_pb2.UNAVAILABLE,
    Kind.INTERNAL: code_pb2.INTERNAL,
    Kind.DEADLINE_EXCEEDED: code_pb2.DEADLINE_EXCEEDED,
    Kind.CANCELLED: code_pb2.CANCELLED,
    Kind.UNAUTHENTICATED: code_pb2.UNAUTHENTICATED,
    Kind.PERMISSION_DENIED: code_pb2.PERMISSION_DENIED,
    Kind.ALREADY_EXISTS: code_pb2.ALREADY_EXISTS,
}


def _pack(message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


# The status travels in the trailers (grpc-message, grpc-status-details-bin
# as base64); a client refuses metadata over 8 KiB and then loses every
# detail. Cut each text and keep the whole status well under that.
MAX_MESSAGE_CHARS = 600
MAX_TEXT_CHARS = 200
MAX_DETAILS_BYTES = 3000


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _violation(v) -> error_details_pb2.BadRequest.FieldViolation:
    return error_details_pb2.BadRequest.FieldViolation(
        field=_cut(v.field, MAX_TEXT_CHARS),
        description=_cut(v.description, MAX_TEXT_CHARS),
        reason=_cut(v.reason, MAX_TEXT_CHARS),
    )


def to_status_proto(error: ServiceError) -> status_pb2.Status:
    metadata = {_cut(k, MAX_TEXT_CHARS): _cut(v, MAX_TEXT_CHARS) for k, v in error.metadata.items()}
    details = [
        _pack(error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN, metadata=metadata))
    ]
    if error.violations:
        bad = error_details_pb2.BadRequest()
        for v in error.violations:
            bad.field_violations.append(_violation(v))
            if bad.ByteSize() > MAX_DETAILS_BYTES // 2:
                del bad.field_violations[
                    -1
                ]  # the first ones are named; the message counts them all
                break
        details.append(_pack(bad))
    if error.retry_after_s is not None:
        details.append(
            _pack(
                error_details_pb2.RetryInfo(
                    retry_delay=duration_pb2.Duration(seconds=error.retry_after_s)
                )
            )
        )
    return status_pb2.Status(
        code=_CODES[error.kind], message=_cut(error.message, MAX_MESSAGE_CHARS), details=details
    )
