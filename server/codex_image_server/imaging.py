"""Pillow at the edges: inspect untrusted bytes safely and convert codex output.

Pillow's global MAX_IMAGE_PIXELS bomb guard is replaced by an explicit pixel
limit checked from the header, before any pixel is decoded.
"""
from __future__ import annotations

import dataclasses
import io

from PIL import Image, UnidentifiedImageError

Image.MAX_IMAGE_PIXELS = None  # we check our own limit before decoding

MIME_BY_FORMAT = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
EXTENSION_BY_MIME = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}
PIL_FORMAT_BY_OUTPUT = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


class BadImage(Exception):
    """The bytes are not an image we accept; the message says why."""


@dataclasses.dataclass(frozen=True)
class ImageInfo:
    mime_type: str
    width: int
    height: int


def inspect(data: bytes, max_pixels: int) -> ImageInfo:
    """Identify and fully decode `data`, refusing more than `max_pixels`."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format
            width, height = img.size
            if fmt not in MIME_BY_FORMAT:
                raise BadImage(f"format {fmt or 'unknown'} is not PNG, JPEG, WebP or GIF")
            if width * height > max_pixels:
                raise BadImage(f"{width}x{height} exceeds the limit of {max_pixels} pixels "
                               "(possible decompression bomb)")
            img.load()  # a truncated or corrupt body fails here, not upstream
    except BadImage:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise BadImage(f"does not decode as an image ({type(exc).__name__})") from None
    return ImageInfo(MIME_BY_FORMAT[fmt], width, height)


DEFAULT_QUALITY = 95


def has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "RGBa") or (img.mode == "P" and "transparency" in img.info)


def convert(data: bytes, output_format: str, quality: int | None = None, opaque: bool = False) -> bytes:
    """Re-encode codex's output into the asked-for format (jpeg has no alpha;
    `opaque` flattens any alpha onto white); `quality` is for jpeg and webp."""
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        target = PIL_FORMAT_BY_OUTPUT[output_format]
        if (opaque or target == "JPEG") and has_alpha(img):
            rgba = img.convert("RGBA")
            img = Image.new("RGB", rgba.size, (255, 255, 255))
            img.paste(rgba, mask=rgba.getchannel("A"))
        elif target == "JPEG" and img.mode not in ("RGB", "L"):
            img = img.convert("RGB")
        out = io.BytesIO()
        if target == "PNG":
            img.save(out, format=target)
        else:
            img.save(out, format=target, quality=DEFAULT_QUALITY if quality is None else quality)
        return out.getvalue()


def alpha_of(data: bytes) -> bool:
    with Image.open(io.BytesIO(data)) as img:
        return has_alpha(img)
