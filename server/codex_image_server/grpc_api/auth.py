"""API-key check for ImageService. grpc.health and reflection stay open so a
mesh can probe and a person can `grpcurl list` without a key."""
from __future__ import annotations

import hashlib
import hmac

import grpc

from ..errors import Kind, ServiceError
from ..settings import env_name
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
        presented = presented_key(handler_call_details.invocation_metadata)
        if key_matches(presented, self._keys):
            return handler
        return _deny(handler, bool(presented))


def denial_message(presented: bool) -> str:
    """What a caller must do about a 401: which header, and where the key lives."""
    what = "the API key sent is not one this server accepts" if presented else "this server requires an API key"
    return (f"{what}: send it as `X-API-Key: <key>` or `Authorization: Bearer <key>`. The server's keys are "
            f"set with {env_name('api_keys')} or --api-key; a server on 127.0.0.1 needs none, so for a "
            "client that cannot send a key (the Photoshop host never does), start the server without one.")


def _deny(handler, presented: bool):
    status = to_grpc_status(ServiceError(Kind.UNAUTHENTICATED, "UNAUTHORIZED", denial_message(presented)))

    def abort(request, context):
        context.abort_with_status(status)

    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(
            abort, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)
    return grpc.unary_unary_rpc_method_handler(
        abort, request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer)
