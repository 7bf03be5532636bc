"""The /v1 HTTP shim: a grpc-gateway-style HTTP front for ImageService.

It talks to the service only over gRPC, so the gRPC server stays the one
implementation; routes come from the proto's google.api.http annotations.
"""
