"""One Generate call run to its end, for tests that want its images or error."""

from __future__ import annotations

import grpc
from codeximage.v1 import image_service_pb2 as pb


def generate(
    stub, prompt: str, *, count: int = 1, request_id: str = "", metadata=None, timeout: float = 60
):
    """Run one Generate to its end: (images, error or None)."""
    images = []
    try:
        for r in stub.Generate(
            pb.GenerateRequest(prompt=prompt, count=count, request_id=request_id),
            metadata=metadata,
            timeout=timeout,
        ):
            if r.WhichOneof("event") == "image":
                images.append(r.image)
    except grpc.RpcError as exc:
        return images, exc
    return images, None
