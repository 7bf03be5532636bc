"""One exception type for every failed call, with the server's rich status
(google.rpc.Status details) unpacked: ErrorInfo reason and BadRequest fields."""

from __future__ import annotations

import dataclasses

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


@dataclasses.dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str
    reason: str = ""

    def __str__(self) -> str:
        suffix = f" [{self.reason}]" if self.reason else ""
        return f"{self.field}: {self.description}{suffix}"


class ClientError(Exception):
    """A call failed. `code` is a grpc.StatusCode; `reason` is the ErrorInfo
    reason (e.g. "INVALID_SIZE", "QUEUE_FULL"), empty when the server sent none."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str = "",
        domain: str = "",
        metadata: dict[str, str] | None = None,
        violations: tuple[FieldViolation, ...] = (),
        retry_delay_s: float | None = None,
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.domain = domain
        self.metadata = dict(metadata or {})
        self.violations = tuple(violations)
        self.retry_delay_s = retry_delay_s

    def __str__(self) -> str:
        head = self.code.name + (f" ({self.reason})" if self.reason else "") + f": {self.message}"
        return "\n".join([head, *(f"  {v}" for v in self.violations)])


# A stream that a proxy ended without any status, because the server behind
# it went away mid-call: HAProxy 2.6 ends the stream with an END_STREAM DATA
# frame and no trailers when a replica is SIGKILLed (no setting of it sends a
# gRPC status instead), which grpc-core reports as UNKNOWN "Stream removed
# (Data frame with END_STREAM flag received)". Our servers never answer UNKNOWN (every error
# carries ErrorInfo), so this is the transport, not an answer: the client
# reports it as UNAVAILABLE (CONNECTION_LOST), which may be retried.
CUT_STREAM = "Stream removed"
CONNECTION_LOST = "CONNECTION_LOST"


def from_rpc_error(error: grpc.RpcError) -> ClientError:
    """Turn what grpcio raised into a ClientError, reading the status details
    the server attached (grpc-status-details-bin trailer) when there are any."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    message = (error.details() if hasattr(error, "details") else "") or str(code)
    status = rpc_status.from_call(error) if hasattr(error, "trailing_metadata") else None
    if code == grpc.StatusCode.UNKNOWN and not status and message.startswith(CUT_STREAM):
        return ClientError(
            grpc.StatusCode.UNAVAILABLE,
            "the connection to the server was lost mid-call (grpc: "
            f"UNKNOWN {message!r}, no status from any server): it went away",
            reason=CONNECTION_LOST,
        )
    return _with_details(code, message, status)


def from_status(status) -> ClientError:
    """A google.rpc.Status (e.g. a failed operation's `error`) as a ClientError."""
    code = next((c for c in grpc.StatusCode if c.value[0] == status.code), grpc.StatusCode.UNKNOWN)
    return _with_details(code, status.message or str(code), status)


def _with_details(code: grpc.StatusCode, message: str, status) -> ClientError:
    reason = domain = ""
    metadata: dict[str, str] = {}
    violations: list[FieldViolation] = []
    retry = None
    for detail in status.details if status else ():
        info, bad, retry_info = (
            error_details_pb2.ErrorInfo(),
            error_details_pb2.BadRequest(),
            error_details_pb2.RetryInfo(),
        )
        if detail.Unpack(info):
            reason, domain, metadata = info.reason, info.domain, dict(info.metadata)
        elif detail.Unpack(bad):
            violations += [
                FieldViolation(v.field, v.description, v.reason) for v in bad.field_violations
            ]
        elif detail.Unpack(retry_info):
            retry = retry_info.retry_delay.ToTimedelta().total_seconds()
    return ClientError(
        code,
        message,
        reason=reason,
        domain=domain,
        metadata=metadata,
        violations=tuple(violations),
        retry_delay_s=retry,
    )
