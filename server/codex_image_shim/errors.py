"""The one place the service's errors become HTTP statuses and error bodies.

A ServiceError is first the API's google.rpc.Status (dataplane/rpc_status.py,
the very one a gRPC caller receives), then an HTTP status by grpc-gateway's
table. Body: the plugin contract's `{"error": {code, message, type}}` with
that Status (code, message, details) beside it as `status`. `error.code` is
the ErrorInfo reason lower-cased (MISSING_PROMPT -> missing_prompt); errors
the shim finds itself carry a Status built the same way.
"""

from __future__ import annotations

import grpc
from codex_image_server.dataplane.rpc_status import DOMAIN, to_status_proto
from codex_image_server.errors import Kind, ServiceError
from codex_image_server.runtime.logs import log
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from . import jsonmap

# The grpc-gateway table (runtime.HTTPStatusFromCode).
HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}
REASONS = {499: "Client Closed Request"}  # aiohttp knows no phrase for 499


class ShimError(Exception):
    """An error the shim finds before (or instead of) calling the service."""

    def __init__(
        self,
        code: grpc.StatusCode,
        reason: str,
        message: str,
        *,
        http_status: int | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status_pb2.Status(
            code=code.value[0], message=message, details=[_error_info(reason)]
        )
        self.http_status = http_status or HTTP_STATUS[code]
        self.headers = dict(headers or {})

    @classmethod
    def from_status(cls, status: status_pb2.Status) -> ShimError:
        """The service's own status, as it maps to HTTP."""
        error = cls.__new__(cls)
        Exception.__init__(error, status.message)
        error.status, error.http_status, error.headers = status, http_status_of(status), {}
        return error


def _error_info(reason: str, metadata: dict[str, str] | None = None) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata or {}))
    return packed


def bad_field(field: str, description: str, reason: str) -> ShimError:
    """A field the shim cannot even put into the request, named like the
    service names its own (ErrorInfo + BadRequest)."""
    error = ShimError(
        grpc.StatusCode.INVALID_ARGUMENT, reason, f"invalid request: {field}: {description}"
    )
    packed = any_pb2.Any()
    packed.Pack(
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=field, description=description, reason=reason
                )
            ]
        )
    )
    error.status.details.append(packed)
    return error


def invalid_json(message: str) -> ShimError:
    return ShimError(grpc.StatusCode.INVALID_ARGUMENT, "INVALID_JSON", message)


def wrong_type(prefix: str, exc: Exception) -> ShimError:
    """protobuf's ParseError says which field and type; it may also quote the
    value, so only the start of its message is kept."""
    text = str(exc)
    return invalid_json(f"{prefix}: {text[:160]}{'...' if len(text) > 160 else ''}")


def invalid_text(field: str, message: str) -> ShimError:
    return bad_field(field, message, "INVALID_TEXT")


def unsupported_encoding(encoding: str) -> ShimError:
    return ShimError(
        grpc.StatusCode.INVALID_ARGUMENT,
        "UNSUPPORTED_CONTENT_ENCODING",
        f"Content-Encoding {encoding[:32]!r} is not supported; send the body plain, "
        "gzip or deflate",
        http_status=415,
    )


def bad_encoding(encoding: str) -> ShimError:
    return ShimError(
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_CONTENT_ENCODING",
        f"the body does not inflate as {encoding[:32]}",
    )


def host_not_allowed(host: str) -> ShimError:
    shown = repr(host[:80]) if host else "(none)"
    return ShimError(
        grpc.StatusCode.PERMISSION_DENIED,
        "HOST_NOT_ALLOWED",
        f"this server does not answer for Host {shown}: use an IP address or localhost, or list "
        "the name with --allowed-host (CODEX_IMAGE_SERVER_ALLOWED_HOSTS)",
        http_status=421,
    )


def origin_not_allowed(origin: str) -> ShimError:
    return ShimError(
        grpc.StatusCode.PERMISSION_DENIED,
        "ORIGIN_NOT_ALLOWED",
        f"requests from origin {origin[:80]!r} are not allowed: list it with --allowed-origin "
        "(CODEX_IMAGE_SERVER_ALLOWED_ORIGINS)",
    )


def unsupported_media_type(content_type: str, multipart: bool) -> ShimError:
    wanted = "application/json or multipart/form-data" if multipart else "application/json"
    return ShimError(
        grpc.StatusCode.INVALID_ARGUMENT,
        "UNSUPPORTED_MEDIA_TYPE",
        f"Content-Type {content_type[:60] or '(none)'!r} is not accepted here; send {wanted}",
        http_status=415,
    )


def invalid_reference(message: str) -> ShimError:
    return ShimError(grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REFERENCE", message)


def body_too_large(limit: int, what: str = "request body") -> ShimError:
    return ShimError(
        grpc.StatusCode.INVALID_ARGUMENT,
        "BODY_TOO_LARGE",
        f"{what} is larger than {limit} bytes",
        http_status=413,
    )


def not_found_route(path: str) -> ShimError:
    return ShimError(grpc.StatusCode.NOT_FOUND, "NOT_FOUND", f"no route for {path}")


def method_not_allowed(method: str, path: str, allowed: tuple[str, ...]) -> ShimError:
    allow = ", ".join((*allowed, "OPTIONS"))
    return ShimError(
        grpc.StatusCode.UNIMPLEMENTED,
        "METHOD_NOT_ALLOWED",
        f"{method} is not allowed on {path}; use {allow}",
        http_status=405,
        headers={"Allow": allow},
    )


def unavailable(message: str) -> ShimError:
    return ShimError(grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE", message)


def status_of(error: Exception) -> status_pb2.Status:
    """The google.rpc.Status a gRPC caller gets for the same error; anything
    else than a ServiceError (a crash mid-stream) is INTERNAL, without its text."""
    if not isinstance(error, ServiceError):
        log("shim.crashed", level="error", error_type=type(error).__name__)
        error = ServiceError(Kind.INTERNAL, "INTERNAL", "internal error in the HTTP shim")
    return to_status_proto(error)


def of_service_error(error: ServiceError) -> ShimError:
    """A ServiceError met before a route runs (the key check), as a ShimError."""
    return ShimError.from_status(to_status_proto(error))


def http_status_of(status: status_pb2.Status) -> int:
    for code in grpc.StatusCode:
        if code.value[0] == status.code:
            return HTTP_STATUS.get(code, 500)
    return 500


def reason_of(status: status_pb2.Status) -> str:
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            if info.reason:
                return info.reason
    return code_pb2.Code.Name(status.code) if status.code in code_pb2.Code.values() else "UNKNOWN"


def retry_after_s(status: status_pb2.Status) -> int | None:
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return max(1, info.retry_delay.seconds)
    return None


def error_body(status: status_pb2.Status, http_status: int) -> dict:
    return {
        "error": {
            "code": reason_of(status).lower(),
            "message": status.message,
            "type": "invalid_request_error" if http_status < 500 else "server_error",
        },
        "status": jsonmap.status_to_dict(status),
    }
