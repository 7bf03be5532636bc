"""The /v1 HTTP shim: a grpc-gateway-style HTTP front for ImageService.

It calls the dataplane's handlers (codex_image_server/dataplane/handlers.py),
the very ones the gRPC servicer calls, on the gRPC server's own event loop:
one key check (team/auth.py), one validation, one google.rpc.Status per
error; routes come from the proto's google.api.http annotations.
"""
