"""Request bytes that are not the message they claim to be: INVALID_ARGUMENT
with a plain message, instead of grpcio's INTERNAL "Exception deserializing
request!" (and a traceback in the log)."""
from __future__ import annotations

import grpc
from google.protobuf.message import DecodeError

from ..errors import Kind, ServiceError
from .status import to_grpc_status

_UNDECODABLE = object()


def _refuse(context) -> None:
    context.abort_with_status(to_grpc_status(ServiceError(
        Kind.INVALID_ARGUMENT, "INVALID_REQUEST_BYTES",
        "the request bytes do not decode as this method's protobuf message")))


class UndecodableRequestInterceptor(grpc.ServerInterceptor):
    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.request_streaming or handler.request_deserializer is None:
            return handler
        parse = handler.request_deserializer

        def deserialize(raw: bytes):
            try:
                return parse(raw)
            except (DecodeError, ValueError, RuntimeError):
                return _UNDECODABLE

        if handler.response_streaming:
            behaviour = handler.unary_stream

            def stream(request, context):
                if request is _UNDECODABLE:
                    _refuse(context)
                yield from behaviour(request, context)
            return grpc.unary_stream_rpc_method_handler(
                stream, request_deserializer=deserialize, response_serializer=handler.response_serializer)
        behaviour = handler.unary_unary

        def unary(request, context):
            if request is _UNDECODABLE:
                _refuse(context)
            return behaviour(request, context)
        return grpc.unary_unary_rpc_method_handler(
            unary, request_deserializer=deserialize, response_serializer=handler.response_serializer)
