"""Real images for the stand-in's Images API answers, and data-URL decoding."""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import os
import re

from PIL import Image, ImageDraw

_counter = itertools.count(1)
_SIZE_RE = re.compile(r"^\s*(\d{1,5})\s*[xX]\s*(\d{1,5})\s*$")


def parse_size(size, default: str) -> tuple[int, int]:
    """`"WxH"` to (w, h); "auto", missing or malformed gives `default`."""
    match = _SIZE_RE.match(size) if isinstance(size, str) else None
    if not match:
        match = _SIZE_RE.match(default)
    return int(match.group(1)), int(match.group(2))


def make_png(width: int, height: int, noise: bool = False) -> bytes:
    """A PNG of exactly width x height, different on every call.

    Each image gets its own colour and serial stripe so that the sha256 of
    every image handed out is distinct (tests tell candidates apart by it).
    Flat colour keeps large sizes fast to encode; `noise` gives random pixels
    stored uncompressed instead, so the file is as large as its pixels
    (about 3 bytes each: large-download tests and benchmarks).
    """
    if noise:
        out = io.BytesIO()
        Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(
            out, format="PNG", compress_level=0
        )
        return out.getvalue()
    serial = next(_counter)
    seed = hashlib.sha256(f"standin-{serial}".encode()).digest()
    img = Image.new("RGB", (width, height), tuple(seed[:3]))
    draw = ImageDraw.Draw(img)
    stripe = max(1, height // 16)
    draw.rectangle([0, 0, width - 1, stripe - 1], fill=tuple(seed[3:6]))
    draw.text((4, min(stripe + 4, height - 1)), f"standin #{serial}", fill=(255, 255, 255))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def make_subject(width: int, height: int, background: tuple) -> bytes:
    """A subject (a reddish disc) on `background`: RGBA (0, 0, 0, 0) for a
    transparent answer, or an opaque key colour; different on every call."""
    serial = next(_counter)
    seed = hashlib.sha256(f"subject-{serial}".encode()).digest()
    mode = "RGBA" if len(background) == 4 else "RGB"
    img = Image.new(mode, (width, height), background)
    colour = (200, 40 + seed[0] % 80, 30 + seed[1] % 40) + ((255,) if mode == "RGBA" else ())
    ImageDraw.Draw(img).ellipse(
        [width // 4, height // 4, width * 3 // 4, height * 3 // 4], fill=colour
    )
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def decode_data_url(url: str) -> tuple[str, bytes]:
    """`data:<mime>;base64,<b64>` to (mime, bytes)."""
    head, _, payload = url.partition(",")
    mime = head[len("data:") :].split(";")[0] if head.startswith("data:") else ""
    return mime, base64.b64decode(payload)


def dimensions(data: bytes) -> tuple[int, int] | None:
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.size
    except Exception:  # noqa: BLE001 - not an image Pillow knows (it raises many kinds): the record says so
        return None
