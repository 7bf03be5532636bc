"""API-key check for ImageService. grpc.health and reflection stay open so a
mesh can probe and a person can `grpcurl list` without a key."""
from __future__ import annotations

import grpc

from ..errors import Kind, ServiceError
from ..keys import ApiKey, Keyring
from .status import to_grpc_status

PROTECTED_PREFIX = "/codeximage.v1.ImageService/"


def presented_key(metadata) -> str:
    for key, value in metadata or ():
        if key == "authorization" and value.lower().startswith("bearer "):
            return value[7:].strip()
        if key == "x-api-key":
            return value.strip()
    return ""


def caller_key(keyring: Keyring, metadata) -> ApiKey | None:
    """The one auth check: the key entry of the caller, None when refused."""
    return keyring.identify(presented_key(metadata))


class ApiKeyInterceptor(grpc.ServerInterceptor):
    def __init__(self, keyring: Keyring):
        self._keyring = keyring

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or not handler_call_details.method.startswith(PROTECTED_PREFIX):
            return handler
        if caller_key(self._keyring, handler_call_details.invocation_metadata) is not None:
            return handler
        return _deny(handler)


def _deny(handler):
    status = to_grpc_status(ServiceError(
        Kind.UNAUTHENTICATED, "UNAUTHORIZED",
        "missing or wrong API key: send `authorization: Bearer <key>` or `x-api-key: <key>`"))

    def abort(request, context):
        context.abort_with_status(status)

    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(
            abort, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)
    return grpc.unary_unary_rpc_method_handler(
        abort, request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer)
