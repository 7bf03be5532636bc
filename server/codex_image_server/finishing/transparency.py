"""Transparent backgrounds that really are transparent.

Codex's image tool takes `transparent_background`, but the alpha it returns
is unreliable (lost when a reference is given, sometimes simply opaque). So
every transparent candidate is asked for both at once: the tool's own alpha,
and the subject drawn on a flat key colour (see `engine/prompt.py`). Then:

- the image came back with real alpha: the image model made it;
- it came back opaque: the key colour is keyed out here (`matte.key_out`);
- either way the result is measured and verified, and refused when it fails.

No surface knows any of this: they pass `background` and show the figures.
"""

from __future__ import annotations

import dataclasses
import io
import re

import numpy as np
from PIL import Image

from codex_image_server.errors import Kind, ServiceError
from codex_image_server.finishing import matte

BACKGROUNDS = ("auto", "opaque", "transparent")
ALPHA_FORMATS = ("png", "webp")

IMAGE_MODEL = "image_model"
KEYED_MATTE = "keyed_matte"

GREEN = (0, 255, 0)
MAGENTA = (255, 0, 255)
# Prompts about green things get a magenta key, the rest a green one: the key
# must be a colour the subject does not use.
_GREENISH = re.compile(
    r"\b(green\w*|grass\w*|leaf|leaves|lea(f|ves)y|forest\w*|jungle\w*|emerald\w*|lime\w*|"
    r"olive\w*|mint\w*|jade|foliage|trees?|plants?|frogs?|moss\w*|meadow\w*|chroma\w*|"
    r"cactus\w*|cacti|lizards?|turtles?|dragons?|shrek|hulk|st\.? patrick\w*|"
    r"clovers?|shamrocks?|salad\w*|broccoli|vegetables?)\b",
    re.I,
)


def key_color(prompt: str) -> tuple[int, int, int]:
    return MAGENTA if _GREENISH.search(prompt or "") else GREEN


def hex_color(rgb: tuple[int, int, int]) -> str:
    r, g, b = rgb
    return f"#{r:02x}{g:02x}{b:02x}"


@dataclasses.dataclass(frozen=True)
class Transparent:
    """A verified transparent image: PNG bytes, which path made the alpha, the figures."""

    png: bytes
    alpha_source: str
    figures: matte.Figures


def failed(message: str, figures: matte.Figures | None = None) -> ServiceError:
    meta = {}
    if figures is not None:
        meta = {
            k: (f"{v:.4f}" if isinstance(v, float) else str(v))
            for k, v in dataclasses.asdict(figures).items()
        }
    return ServiceError(Kind.FAILED_PRECONDITION, "TRANSPARENCY_FAILED", message, metadata=meta)


def make_transparent(data: bytes, key: tuple[int, int, int]) -> Transparent:
    """Codex's image -> a verified RGBA PNG, or TRANSPARENCY_FAILED."""
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        has_alpha = img.mode in ("RGBA", "LA", "PA") or (
            img.mode == "P" and "transparency" in img.info
        )
        rgba = np.asarray(img.convert("RGBA"))
    rgb = rgba[..., :3]
    if has_alpha and matte.has_real_alpha(rgba[..., 3]):
        out = matte.despill(rgba, key)
        figures = matte.measure(out, key)
        if not matte.verdict(figures):
            return _png(out, IMAGE_MODEL, figures)
        # Real alpha, but e.g. a key-coloured halo left around the subject:
        # put it back on the key and key it out properly.
        rgb = matte.over_key(rgba, key)
    try:
        out = matte.key_out(rgb, key)
    except matte.CannotKey as exc:
        raise failed(
            f"the image came back without real transparency and cannot be keyed: {exc}"
        ) from None
    source = KEYED_MATTE
    figures = matte.measure(out, key)
    problem = matte.verdict(figures)
    if problem:
        raise failed(f"the transparent result failed verification ({source}): {problem}", figures)
    return _png(out, source, figures)


def remeasured(made: Transparent, data: bytes, key: tuple[int, int, int]) -> Transparent:
    """The figures of the image as finally delivered (e.g. after a resize),
    which must still pass."""
    with Image.open(io.BytesIO(data)) as img:
        figures = matte.measure(np.asarray(img.convert("RGBA")), key)
    problem = matte.verdict(figures)
    if problem:
        raise failed(
            f"the transparent result failed verification after resizing: {problem}", figures
        )
    return dataclasses.replace(made, figures=figures)


def _png(rgba: np.ndarray, source: str, figures: matte.Figures) -> Transparent:
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG", compress_level=1)  # as imaging._encode
    return Transparent(buf.getvalue(), source, figures)
