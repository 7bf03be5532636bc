"""OpenAI's answer shapes, from the Image messages of a Generate stream.

`usage` is codex's own turn usage (turn.completed: the agent model's tokens,
summed over the candidates), given only when every candidate reported it;
the image model's own token counts never reach codex's output. `model` and
`quality` are what codex's image tool asked the image model for (always
gpt-image-2 at "auto"), not what the caller asked.
"""

from __future__ import annotations

import base64
import time

from codeximage.v1 import image_service_pb2 as pb

from .fields import SERVED_MODEL, USED_QUALITY

ALPHA_SOURCES = {
    pb.ALPHA_SOURCE_IMAGE_MODEL: "image_model",
    pb.ALPHA_SOURCE_KEYED_MATTE: "keyed_matte",
}


def usage(images: list[pb.Image]) -> dict | None:
    if not images or not all(img.HasField("usage") for img in images):
        return None
    inp = sum(img.usage.input_tokens for img in images)
    out = sum(img.usage.output_tokens for img in images)
    return {
        "input_tokens": inp,
        "output_tokens": out,
        "total_tokens": inp + out,
        "input_tokens_details": {"text_tokens": inp, "image_tokens": 0},
    }


def item(image: pb.Image, data: bytes | None, origin: str) -> dict:
    """One `data[]` entry: b64_json (when `data` is given) or url, plus our own
    facts under names OpenAI does not use (id, size, alpha source and figures)."""
    entry: dict = (
        {"b64_json": base64.b64encode(data).decode()}
        if data is not None
        else {"url": origin + image.file_path}
    )
    if image.revised_prompt:
        entry["revised_prompt"] = image.revised_prompt
    entry["id"] = image.id
    entry["size"] = f"{image.width}x{image.height}"
    if image.alpha_source:
        entry["alpha_source"] = ALPHA_SOURCES.get(image.alpha_source, "")
        t = image.transparency
        entry["transparency"] = {
            "alpha_min": t.alpha_min,
            "alpha_max": t.alpha_max,
            "transparent_share": round(t.transparent_share, 4),
            "opaque_share": round(t.opaque_share, 4),
            "edge_residue": round(t.edge_residue, 4),
            "key_color": t.key_color,
        }
    return entry


def _common(images: list[pb.Image], request: pb.GenerateRequest) -> dict:
    first = images[0] if images else None
    return {
        "background": "transparent" if request.background == "transparent" else "opaque",
        "output_format": (first.output_format if first else "") or "png",
        "model": SERVED_MODEL,
        "quality": USED_QUALITY,
        "size": f"{first.width}x{first.height}" if first else "auto",
    }


def response(
    images: list[pb.Image], files: list[bytes | None], request: pb.GenerateRequest, origin: str
) -> dict:
    body = {
        "created": int(time.time()),
        **_common(images, request),
        "data": [item(img, data, origin) for img, data in zip(images, files, strict=True)],
    }
    counted = usage(images)
    if counted:
        body["usage"] = counted
    return body


def completed_event(kind: str, image: pb.Image, data: bytes, request: pb.GenerateRequest) -> dict:
    """`image_generation.completed` / `image_edit.completed` for one image."""
    event = {
        "type": f"{kind}.completed",
        "b64_json": base64.b64encode(data).decode(),
        "created_at": int(time.time()),
        **_common([image], request),
        "id": image.id,
    }
    if image.revised_prompt:
        event["revised_prompt"] = image.revised_prompt
    counted = usage([image])
    event["usage"] = counted or {
        "input_tokens": 0,
        "output_tokens": 0,
        "total_tokens": 0,
        "input_tokens_details": {"text_tokens": 0, "image_tokens": 0},
    }
    return event
