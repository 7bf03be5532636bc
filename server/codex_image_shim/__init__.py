"""The /v1 HTTP shim: a grpc-gateway-style HTTP front for ImageService.

It calls the servicer in-process (grpc_api/inprocess.py), on the gRPC
server's own event loop, so the servicer stays the one implementation of
auth, validation and errors; routes come from the proto's google.api.http
annotations.
"""
