"""Python client for codex-image-server's gRPC ImageService."""

from .client import (
    DEFAULT_TARGET,
    Client,
    GenerateResult,
    Generation,
    operation_metadata,
    operation_name,
    operation_result,
    reference,
)
from .errors import ClientError, FieldViolation
from .events import Event, ImageReady, Progress, Summary

__all__ = [
    "DEFAULT_TARGET",
    "Client",
    "ClientError",
    "Event",
    "FieldViolation",
    "GenerateResult",
    "Generation",
    "ImageReady",
    "Progress",
    "Summary",
    "operation_metadata",
    "operation_name",
    "operation_result",
    "reference",
]
