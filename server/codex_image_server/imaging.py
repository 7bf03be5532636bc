"""Pillow at the edges: inspect untrusted bytes safely and convert codex output.

Pillow's global MAX_IMAGE_PIXELS bomb guard is replaced by an explicit pixel
limit checked from the header, before any pixel is decoded.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import struct
import threading

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


def identify(data: bytes, max_pixels: int) -> ImageInfo:
    """Format and size from the header alone: no pixel is decoded, so this
    costs the same for a 64-megapixel bomb as for a thumbnail."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format
            width, height = img.size
    except (UnidentifiedImageError, Image.DecompressionBombError):
        raise BadImage("is not a PNG, JPEG, WebP or GIF image") from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error):
        raise BadImage("has a broken image header") from None
    if fmt not in MIME_BY_FORMAT:
        raise BadImage(f"format {fmt or 'unknown'} is not PNG, JPEG, WebP or GIF")
    if width * height > max_pixels:
        raise BadImage(f"{width}x{height} exceeds the limit of {max_pixels} pixels "
                       "(possible decompression bomb)")
    return ImageInfo(MIME_BY_FORMAT[fmt], width, height)


def check_decodes(data: bytes) -> None:
    """Decode every pixel once, so a truncated or corrupt body fails here,
    not upstream. Costs about width x height x 4 bytes: see `DECODE_BUDGET`."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, struct.error,
            Image.DecompressionBombError):
        raise BadImage("is truncated or corrupt: it does not decode") from None


def decode_cost(info: ImageInfo) -> int:
    return info.width * info.height * 4


def inspect(data: bytes, max_pixels: int) -> ImageInfo:
    """Identify and fully decode `data`, refusing more than `max_pixels`."""
    info = identify(data, max_pixels)
    check_decodes(data)
    return info


class MemoryBudget:
    """Bytes that decodes may hold at once, shared by every request. One
    decode larger than the whole budget may run alone, so none waits forever."""

    def __init__(self, limit: int):
        self.limit = limit
        self._used = 0
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def hold(self, n: int, cancelled: threading.Event | None = None):
        with self._cond:
            while self._used and self._used + n > self.limit:
                if cancelled is not None and cancelled.is_set():
                    raise BudgetCancelled()
                self._cond.wait(timeout=0.2)
            self._used += n
        try:
            yield
        finally:
            with self._cond:
                self._used -= n
                self._cond.notify_all()


class BudgetCancelled(Exception):
    """The caller gave up while waiting for decode memory."""


# Four 64-megapixel references decoding at once once cost 800+ MiB.
DECODE_BUDGET = MemoryBudget(512 * 1024 * 1024)


def convert(data: bytes, output_format: str) -> bytes:
    """Re-encode codex's output into the asked-for format (jpeg has no alpha)."""
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        target = PIL_FORMAT_BY_OUTPUT[output_format]
        if target == "JPEG" and img.mode not in ("RGB", "L"):
            img = img.convert("RGB")
        out = io.BytesIO()
        img.save(out, format=target, quality=95) if target != "PNG" else img.save(out, format=target)
        return out.getvalue()
