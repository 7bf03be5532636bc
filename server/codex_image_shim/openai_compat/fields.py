"""OpenAI's Images API fields (gpt-image models) -> a GenerateRequest.

Everything the service validates (prompt, n, size, quality, background,
output_format, output_compression, references) is passed through as given,
so its rules and its field errors apply unchanged. This module only renames,
and refuses what the service cannot honour:
- `mask`: codex's image tool takes no mask, so a masked edit cannot be honoured.
- `response_format` other than b64_json / url, non-data-URL image URLs (no fetching).
- `output_format` gif or svg (OpenAI's 2026 formats): codex's image tool makes
  one raster image per call, so an animation or a vector image cannot be made.
Accepted and ignored (named in the X-Codex-Image-Ignored header): `moderation`
(low|auto: codex's tool sends none, so the image model's default applies),
`user`, `style`, `partial_images` (codex makes no partial images),
`input_fidelity` (references always reach the model at full resolution),
`frame_count` / `frame_duration_ms`; and, when they ask for something else
than codex did, `model` (every model id is made by gpt-image-2) and `quality`
(codex's tool always asks for "auto"; the words reach the model in the prompt).
The answer says what codex used: `model` gpt-image-2, `quality` auto.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from codex_image_server.dataplane.convert import WithImages
from codeximage.v1 import image_service_pb2 as pb

from .. import adapter
from ..errors import ShimError
from .errors import OpenAIError

# Listed by /v1/models; any `gpt-image-2.5-<name>` / `gpt-image-2.6-<name>` is accepted too.
MODELS = (
    "gpt-image-2",
    "gpt-image-2.5-sunburst",
    "gpt-image-2.5-flare",
    "gpt-image-2.6-sunburst",
    "gpt-image-2.6-flare",
    "gpt-image-1.5",
    "gpt-image-1",
    "gpt-image-1-mini",
)
_MODEL_FAMILIES = re.compile(r"gpt-image-2\.[56]-[a-z0-9][a-z0-9-]{0,40}")
SERVED_MODEL = "gpt-image-2"  # what codex's image tool always asks for (0.169.0-0.171.0)
USED_QUALITY = "auto"  # ... and at which quality, whatever the caller says
IGNORED = (
    "moderation",
    "user",
    "style",
    "partial_images",
    "input_fidelity",
    "frame_count",
    "frame_duration_ms",
)
# Words the service knows; xhigh and max reach the model as "high" (its best word).
QUALITY_ALIASES = {"standard": "medium", "hd": "high", "xhigh": "high", "max": "high"}
RESPONSE_FORMATS = ("b64_json", "url")
MODERATIONS = ("low", "auto")
UNMAKEABLE_FORMATS = ("gif", "svg")


@dataclasses.dataclass(frozen=True)
class Call:
    request: pb.GenerateRequest  # without its reference images: those are in `images`
    response_format: str
    stream: bool
    ignored: tuple[str, ...]
    images: list = dataclasses.field(default_factory=list)

    def generate_request(self) -> WithImages:
        """What Generate gets: the message and, beside it, the images, which
        the call then no longer holds (they go once they are on disk, not
        when the answer is written)."""
        images = list(self.images)
        self.images.clear()
        return WithImages(self.request, images)


def _int(data: dict, name: str) -> int | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise OpenAIError(f"`{name}` must be an integer", name, "invalid_type")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise OpenAIError(
            f"`{name}` must be an integer, not {value!r}", name, "invalid_type"
        ) from None
    if isinstance(value, float) and value != number:
        raise OpenAIError(f"`{name}` must be an integer, not {value!r}", name, "invalid_type")
    return number


def _text(data: dict, name: str) -> str:
    value = data.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise OpenAIError(f"`{name}` must be a string", name, "invalid_type")
    return value


def _flag(data: dict, name: str) -> bool:
    value = data.get(name)
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def to_call(data: dict, images: Sequence[tuple[bytes, str]] = ()) -> Call:
    """`data`: the JSON body or the multipart text fields; `images`: decoded references."""
    if data.get("mask") not in (None, ""):
        raise OpenAIError(
            "`mask` is not supported: codex's image tool takes no mask, so a masked edit "
            "cannot be honoured. Describe the change in the prompt instead.",
            "mask",
            "mask_not_supported",
        )
    model = _text(data, "model").strip() or SERVED_MODEL
    if not served(model):
        raise OpenAIError(
            f"model {model!r} is not served here; use one of {', '.join(MODELS)} "
            f"(all are made by {SERVED_MODEL} through codex)",
            "model",
            "model_not_found",
        )
    moderation = _text(data, "moderation").strip()
    if moderation and moderation not in MODERATIONS:
        raise OpenAIError(
            f"`moderation` must be one of {', '.join(MODERATIONS)}, not {moderation[:32]!r}",
            "moderation",
            "invalid_value",
        )
    output_format = _text(data, "output_format").strip().lower()
    if output_format in UNMAKEABLE_FORMATS:
        raise OpenAIError(
            f"`output_format` {output_format!r} cannot be made here: codex's image tool makes one "
            "raster image per call, so no animation or vector image; use png, jpeg or webp",
            "output_format",
            "unsupported_output_format",
        )
    response_format = _text(data, "response_format").strip() or "b64_json"
    if response_format not in RESPONSE_FORMATS:
        raise OpenAIError(
            f"`response_format` must be one of {', '.join(RESPONSE_FORMATS)}",
            "response_format",
            "invalid_value",
        )
    quality = _text(data, "quality").strip().lower()
    request = pb.GenerateRequest(
        prompt=_text(data, "prompt"),
        count=_int(data, "n") or 0,
        size=_text(data, "size"),
        quality=QUALITY_ALIASES.get(quality, quality),
        background=_text(data, "background"),
        output_format=_text(data, "output_format"),
    )
    compression = _int(data, "output_compression")
    if compression is not None:
        request.output_compression = compression
    for i, (_, mime) in enumerate(images):
        request.references.append(pb.Reference(mime_type=mime, label=f"image {i + 1}"))
    ignored = tuple(name for name in IGNORED if data.get(name) not in (None, ""))
    if model != SERVED_MODEL:
        ignored += ("model",)
    if quality not in ("", USED_QUALITY):
        ignored += ("quality",)
    return Call(
        request, response_format, _flag(data, "stream"), ignored, [image for image, _ in images]
    )


def served(model: str) -> bool:
    return model in MODELS or bool(_MODEL_FAMILIES.fullmatch(model))


def json_images(data: dict) -> list[tuple[bytes, str]]:
    """The JSON form of an edit: `images: [{"image_url": "data:..."}]` (or `image`)."""
    items = data.get("images")
    if items is None and data.get("image") is not None:
        items = data["image"] if isinstance(data["image"], list) else [data["image"]]
    if items is None:
        return []
    if not isinstance(items, list):
        raise OpenAIError(
            '`images` must be an array of {"image_url": "data:..."}', "images", "invalid_type"
        )
    out = []
    for i, item in enumerate(items):
        url = item.get("image_url") if isinstance(item, dict) else item
        if isinstance(url, dict):
            url = url.get("url")
        if not isinstance(url, str) or not url.startswith("data:"):
            raise OpenAIError(
                f"images[{i}] must carry a data URL (data:<mime>;base64,...); "
                "this server fetches no URLs and knows no file ids",
                "images",
                "invalid_image_url",
            )
        try:
            out.append(adapter.decode_image(url, f"images[{i}].image_url"))
        except ShimError as exc:  # say it in OpenAI's words
            raise OpenAIError(str(exc), "images", "invalid_image_url") from None
    return out
