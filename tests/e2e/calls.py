"""Small gRPC helpers shared by the end-to-end tests."""

from __future__ import annotations

import hashlib
import io

from codeximage.v1 import image_service_pb2 as pb
from PIL import Image

# Generous: the real codex run takes ~1-3 s here; this bounds a hang, not a run.
CALL_TIMEOUT_S = 120


def generate(stub, **fields) -> tuple[list, list, object]:
    """Run one Generate to its end: (images, progress events, summary)."""
    images, progress, summary = [], [], None
    for event in stub.Generate(pb.GenerateRequest(**fields), timeout=CALL_TIMEOUT_S):
        kind = event.WhichOneof("event")
        if kind == "image":
            images.append(event.image)
        elif kind == "progress":
            progress.append(event.progress)
        else:
            summary = event.summary
    return images, progress, summary


def image_bytes(stub, image_id: str) -> bytes:
    chunks = stub.GetImageFile(pb.GetImageFileRequest(image_id=image_id), timeout=CALL_TIMEOUT_S)
    return b"".join(chunk.data for chunk in chunks)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dimensions(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        return img.size
