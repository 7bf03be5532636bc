"""API-key check for ImageService. grpc.health and reflection stay open so a
mesh can probe and a person can `grpcurl list` without a key."""
from __future__ import annotations

import hashlib
import hmac

import grpc

from ..errors import Kind, ServiceError
from .status import to_grpc_status

PROTECTED_PREFIX = "/codeximage.v1.ImageService/"


def presented_key(metadata) -> str:
    for key, value in metadata or ():
        if key == "authorization" and value.lower().startswith("bearer "):
            return value[7:].strip()
        if key == "x-api-key":
            return value.strip()
    return ""


def key_matches(presented: str, keys: tuple[str, ...]) -> bool:
    # Digests make every comparison the same length; every key is compared,
    # without stopping early, so timing says nothing about which one matched.
    wanted = hashlib.sha256(presented.encode()).digest()
    ok = False
    for key in keys:
        ok |= hmac.compare_digest(wanted, hashlib.sha256(key.encode()).digest())
    return ok and bool(presented)


class ApiKeyInterceptor(grpc.ServerInterceptor):
    def __init__(self, keys: tuple[str, ...]):
        self._keys = keys

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or not handler_call_details.method.startswith(PROTECTED_PREFIX):
            return handler
        if key_matches(presented_key(handler_call_details.invocation_metadata), self._keys):
            return handler
        return _deny(handler)


def _deny(handler):
    status = to_grpc_status(ServiceError(
        Kind.UNAUTHENTICATED, "UNAUTHORIZED",
        "missing or wrong API key: send `authorization: Bearer <key>` or `x-api-key: <key>`"))

    def abort(request, context):
        context.abort_with_status(status)

    # The request bytes are never parsed for a caller without a key: garbage
    # from a stranger gets UNAUTHENTICATED, not a parse error.
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(
            abort, request_deserializer=_unread, response_serializer=handler.response_serializer)
    return grpc.unary_unary_rpc_method_handler(
        abort, request_deserializer=_unread, response_serializer=handler.response_serializer)


_NOT_READ = object()


def _unread(_raw: bytes) -> object:
    return _NOT_READ  # not None: grpcio takes None for a failed parse
