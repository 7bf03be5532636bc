"""Pillow at the edges: inspect untrusted bytes safely and convert codex output.

Pillow's global MAX_IMAGE_PIXELS bomb guard is replaced by an explicit pixel
limit checked from the header, before any pixel is decoded.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import struct
import threading
from pathlib import Path

from PIL import Image, UnidentifiedImageError

Image.MAX_IMAGE_PIXELS = None  # we check our own limit before decoding

MIME_BY_FORMAT = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}
EXTENSION_BY_MIME = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
}
PIL_FORMAT_BY_OUTPUT = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


class BadImage(Exception):
    """The bytes are not an image we accept; the message says why."""


class _ViewFile(io.RawIOBase):
    """A read-only file over a memoryview: `io.BytesIO` would copy the whole
    view first (it shares only a `bytes` object's buffer)."""

    def __init__(self, view: memoryview):
        super().__init__()
        self._view, self._pos = view, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = max(0, min(len(buffer), len(self._view) - self._pos))
        buffer[:n] = self._view[self._pos : self._pos + n]
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


def readable(data: bytes | memoryview | Path):
    """What Pillow can open for `data`, without copying it."""
    if isinstance(data, Path):
        return data
    return io.BufferedReader(_ViewFile(data)) if isinstance(data, memoryview) else io.BytesIO(data)


@dataclasses.dataclass(frozen=True)
class ImageInfo:
    mime_type: str
    width: int
    height: int


def identify(data: bytes | memoryview, max_pixels: int) -> ImageInfo:
    """Format and size from the header alone: no pixel is decoded, so this
    costs the same for a 64-megapixel bomb as for a thumbnail."""
    try:
        with Image.open(readable(data)) as img:
            fmt = img.format
            width, height = img.size
    except (UnidentifiedImageError, Image.DecompressionBombError):
        raise BadImage("is not a PNG, JPEG, WebP or GIF image") from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error):
        raise BadImage("has a broken image header") from None
    if fmt not in MIME_BY_FORMAT:
        raise BadImage(f"format {fmt or 'unknown'} is not PNG, JPEG, WebP or GIF")
    if width * height > max_pixels:
        raise BadImage(
            f"{width}x{height} exceeds the limit of {max_pixels} pixels "
            "(possible decompression bomb)"
        )
    return ImageInfo(MIME_BY_FORMAT[fmt], width, height)


def check_decodes(data: bytes | memoryview | Path) -> None:
    """Decode every pixel once, so a truncated or corrupt body fails here,
    not upstream. Costs about width x height x 4 bytes: see `DECODE_BUDGET`."""
    try:
        with Image.open(readable(data)) as img:
            img.load()
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        SyntaxError,
        EOFError,
        struct.error,
        Image.DecompressionBombError,
    ):
        raise BadImage("is truncated or corrupt: it does not decode") from None


def decode_cost(info) -> int:
    """Bytes a full RGBA decode of anything with `width` and `height` holds."""
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
    # `cancelled` is only polled (is_set), which is safe for an asyncio.Event from this thread.
    def hold(self, n: int, cancelled: threading.Event | asyncio.Event | None = None):
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


@dataclasses.dataclass(frozen=True)
class Delivered:
    data: bytes
    info: ImageInfo
    resized: bool  # cropped to the aspect and resampled to the target size
    enlarged: bool  # ... to more pixels than the model drew in that crop


def centre_crop_box(
    width: int, height: int, target_w: int, target_h: int
) -> tuple[int, int, int, int]:
    """The largest box of the target's aspect centred in a width x height
    image: cropping first means resizing never stretches."""
    if width * target_h > height * target_w:  # wider than the target: trim the sides
        crop_w, crop_h = (2 * height * target_w + target_h) // (2 * target_h), height
    else:
        crop_w, crop_h = width, (2 * width * target_h + target_w) // (2 * target_w)
    left, top = (width - crop_w) // 2, (height - crop_h) // 2
    return left, top, left + crop_w, top + crop_h


def _resample_mode(img: Image.Image) -> Image.Image:
    # Pillow resamples palette and bilevel images with nearest neighbour only.
    if img.mode in ("RGB", "RGBA", "L", "LA"):
        return img
    has_alpha = img.mode in ("PA", "RGBa", "La") or "transparency" in img.info
    return img.convert("RGBA" if has_alpha else "RGB")


DEFAULT_QUALITY = 95


def has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode == "P" and "transparency" in img.info
    )


def alpha_of(data: bytes) -> bool:
    """Whether the encoded image has an alpha channel (from its header)."""
    with Image.open(io.BytesIO(data)) as img:
        return has_alpha(img)


def _encode(img: Image.Image, output_format: str, quality: int | None, opaque: bool) -> bytes:
    target = PIL_FORMAT_BY_OUTPUT[output_format]
    if (opaque or target == "JPEG") and has_alpha(img):
        # No alpha wanted (or possible): flatten onto white, not onto black.
        rgba = img.convert("RGBA")
        img = Image.new("RGB", rgba.size, (255, 255, 255))
        img.paste(rgba, mask=rgba.getchannel("A"))
    elif target == "JPEG" and img.mode not in ("RGB", "L"):
        img = img.convert("RGB")
    out = io.BytesIO()
    # PNG at zlib level 1: a 4K image encodes ~6x faster than at the default
    # level 6 for ~25% more bytes (bench/resize_bench.py), and the bytes go
    # to a local caller.
    if target == "PNG":
        img.save(out, format=target, compress_level=1)
    else:
        img.save(out, format=target, quality=DEFAULT_QUALITY if quality is None else quality)
    return out.getvalue()


def deliver(
    data: bytes,
    info: ImageInfo,
    output_format: str,
    target: tuple[int, int] | None,
    quality: int | None = None,
    opaque: bool = False,
) -> Delivered:
    """Codex's image as the caller asked for it: in `output_format` and, when
    `target` is given and differs, exactly that size (centre crop to its
    aspect, then Lanczos); `quality` for jpeg/webp; `opaque` flattens any
    alpha onto white. Bytes already right are passed through untouched."""
    resize_to = target if target is not None and target != (info.width, info.height) else None
    wants_size = resize_to is not None
    recode = (quality is not None and output_format != "png") or (opaque and alpha_of(data))
    if (
        not wants_size
        and not recode
        and info.mime_type == MIME_BY_FORMAT[PIL_FORMAT_BY_OUTPUT[output_format]]
    ):
        return Delivered(data, info, False, False)
    with Image.open(io.BytesIO(data)) as opened:
        opened.load()
        img: Image.Image = opened
        enlarged = False
        if resize_to is not None:
            box = centre_crop_box(img.width, img.height, *resize_to)
            enlarged = resize_to[0] > box[2] - box[0] or resize_to[1] > box[3] - box[1]
            img = _resample_mode(img).crop(box).resize(resize_to, Image.Resampling.LANCZOS)
        encoded = _encode(img, output_format, quality, opaque)
    out_info = ImageInfo(
        MIME_BY_FORMAT[PIL_FORMAT_BY_OUTPUT[output_format]],
        *(resize_to or (info.width, info.height)),
    )
    return Delivered(encoded, out_info, wants_size, enlarged)
