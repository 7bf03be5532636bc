"""OpenAI's error shape, `{"error": {message, type, param, code}}`, from the
service's google.rpc.Status, with the status code from the shim's one
HTTP mapping (codex_image_shim/errors.py), so the SDKs raise their own BadRequestError,
AuthenticationError, NotFoundError, RateLimitError, ..."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2, status_pb2

from .. import errors as shim_errors

# Our request fields -> OpenAI's parameter names, for `error.param`.
_PARAMS = {"count": "n", "references": "image", "aspect": "size", "request_id": None}
_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}
# Reasons OpenAI gives a type of their own: a safety refusal is a 400
# `image_generation_user_error` with code `moderation_blocked`.
_REASON_TYPES = {"MODERATION_BLOCKED": "image_generation_user_error"}


class OpenAIError(Exception):
    """A request this surface refuses itself, before calling the service."""

    def __init__(
        self,
        message: str,
        param: str | None,
        code: str,
        http_status: int = 400,
        grpc_code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT,
    ):
        super().__init__(message)
        self.error = shim_errors.ShimError(
            grpc_code, code.upper(), message, http_status=http_status
        )
        self.param = param


def _first_field(status: status_pb2.Status) -> str | None:
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            if bad.field_violations:
                return bad.field_violations[0].field
    return None


def param_of(field: str | None) -> str | None:
    if not field:
        return None
    head = field.split(".", 1)[0].split("[", 1)[0]
    return _PARAMS.get(head, head)


def body(status: status_pb2.Status, http_status: int, param: str | None = None) -> dict:
    reason = shim_errors.reason_of(status)
    kind = _REASON_TYPES.get(reason) or _TYPES.get(
        http_status, "server_error" if http_status >= 500 else "invalid_request_error"
    )
    return {
        "error": {
            "message": status.message,
            "type": kind,
            "param": param or param_of(_first_field(status)),
            "code": reason.lower(),
        }
    }


def of_exception(exc: Exception) -> tuple[dict, int, dict]:
    """(body, HTTP status, headers) for anything a handler raised: a status,
    or INTERNAL without its text."""
    param = None
    if isinstance(exc, OpenAIError):
        param, exc = exc.param, exc.error
    if isinstance(exc, shim_errors.ShimError):
        status, http_status, headers = exc.status, exc.http_status, dict(exc.headers)
    else:
        status = shim_errors.status_of(exc)
        http_status, headers = shim_errors.http_status_of(status), {}
    retry = shim_errors.retry_after_s(status)
    if retry is not None:
        headers["Retry-After"] = str(retry)
    return body(status, http_status, param), http_status, headers
