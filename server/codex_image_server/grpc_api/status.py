"""The one place domain errors become gRPC statuses: the API's
google.rpc.Status (dataplane/rpc_status.py) as grpc.Status, its details in
the grpc-status-details-bin trailer."""

from __future__ import annotations

import grpc
from grpc_status import rpc_status

from codex_image_server.dataplane.rpc_status import to_status_proto
from codex_image_server.errors import Kind, ServiceError


def to_grpc_status(error: ServiceError) -> grpc.Status:
    return rpc_status.to_status(to_status_proto(error))


def internal_error() -> ServiceError:
    return ServiceError(Kind.INTERNAL, "INTERNAL", "internal server error; see the server log")
