"""gpt-image-2 size rules, presets and aspects: the one place sizes are decided.

Rules for an explicit size: longest edge <= 3840, both edges multiples of 16,
long:short <= 3:1, 655,360 <= pixels <= 8,294,400.

A preset (`1k`/`2k`/`4k`, any case) with an aspect resolves by the Photoshop
plugin's own rule (../shared/http-contract.md), because the plugin computes the
size itself and checks every image it gets against it:
  1. reduce the aspect to w:h; the largest k with w*k, h*k multiples of 16
     inside the preset's edge and pixel caps gives the size, if that size is
     valid (>= the pixel minimum, <= 3:1);
  2. otherwise clamp the ratio to 3:1, take the largest multiple-of-16 height
     under the caps, width = height * ratio rounded down to 16, shrink by 16
     until it fits, then grow by 16 while under the pixel minimum and the next
     step stays within the preset's pixel cap, the 3840 edge and 3:1.
     (At 1k a ratio near 3:1 may end under the pixel minimum: the plugin's
     rule, and harmless, since the delivered image is resampled by us.)

An aspect is a ratio (`W:H`, `landscape`, `portrait`, `square`) or names where
the ratio comes from: the first reference (`reference`, 参考图比例, 原图比例, 自动;
16:9 without references), the canvas (`canvas`, 画布比例; else the first
reference, else 16:9) or the explicit size itself (`custom`, 自定义).
"""

from __future__ import annotations

import dataclasses
import math
import re
from fractions import Fraction

from codex_image_server.errors import FieldViolation

MAX_EDGE = 3840
MULTIPLE = 16
MAX_RATIO = 3
MIN_PIXELS = 655_360
MAX_PIXELS = 8_294_400
# What we accept back from codex: generous above the model's maximum, but a
# bound, so a corrupt or hostile file cannot make us decode gigapixels.
OUTPUT_PIXEL_LIMIT = 4 * MAX_PIXELS


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    max_edge: int
    max_pixels: int


PRESETS = {
    p.name: p
    for p in (
        Preset("1K", 1024, 1024 * 1024),
        Preset("2K", 2048, 2048 * 2048),
        Preset("4K", 3840, MAX_PIXELS),
    )
}

NAMED_ASPECTS = {"landscape": (16, 9), "portrait": (9, 16), "square": (1, 1)}
# Aspects that name where the ratio comes from, with the plugin's own spellings.
REFERENCE_ASPECTS = ("reference", "参考图比例", "原图比例", "自动")
CANVAS_ASPECTS = ("canvas", "画布比例")
CUSTOM_ASPECTS = ("custom", "自定义")
# A reference or canvas ratio with nothing to take it from: the plugin's choice.
FALLBACK_ASPECT = (16, 9)
RATIO_OPTIONS = ("1:1", "16:9", "9:16", "3:2", "2:3", "4:3", "3:4", "4:5", "5:4", "21:9")
SIZE_OPTIONS = (
    "auto",
    "1024x1024",
    "1536x1024",
    "1024x1536",
    "2048x2048",
    "2048x1152",
    "1152x2048",
    "3840x2160",
    "2160x3840",
    "2880x2880",
    "1K",
    "2K",
    "4K",
)
FITS = ("exact", "native")


@dataclasses.dataclass(frozen=True)
class AspectOption:
    name: str
    kind: str
    aliases: tuple[str, ...] = ()
    description: str = ""


def aspect_options() -> list[AspectOption]:
    """Every aspect accepted, for GetCapabilities (the plugin's menu and more)."""
    out = [AspectOption(r, "ratio", (), f"width:height {r}") for r in RATIO_OPTIONS]
    out += [
        AspectOption(name, "ratio", (), "%d:%d" % ratio) for name, ratio in NAMED_ASPECTS.items()
    ]
    fallback = "%d:%d" % FALLBACK_ASPECT
    out += [
        AspectOption(
            REFERENCE_ASPECTS[0],
            "reference",
            REFERENCE_ASPECTS[1:],
            f"the first reference's width:height (as declared, else decoded); {fallback} without "
            "one",
        ),
        AspectOption(
            CANVAS_ASPECTS[0],
            "canvas",
            CANVAS_ASPECTS[1:],
            f"canvas_size's width:height; else the first reference's; else {fallback}",
        ),
        AspectOption(
            CUSTOM_ASPECTS[0],
            "custom",
            CUSTOM_ASPECTS[1:],
            "the explicit size WxH's own ratio (size must be WxH)",
        ),
    ]
    return out


_WXH = re.compile(r"^(\d{1,5})x(\d{1,5})$")
_RATIO = re.compile(r"^(\d{1,5}):(\d{1,5})$")


@dataclasses.dataclass(frozen=True)
class Aspect:
    """What the caller's `aspect` names. `kind`: "" (none given), "ratio"
    (W:H or a named one), "reference", "canvas" or "custom"."""

    kind: str
    ratio: tuple[int, int] | None = None


@dataclasses.dataclass(frozen=True)
class ResolvedSize:
    requested: str  # as the caller wrote it, normalised ("auto", "1536x1024", "2K")
    width: int = 0  # 0 for auto
    height: int = 0
    # The reduced ratio the image should have, when known (also for "auto"
    # with an aspect), and where it came from: ratio, reference, canvas,
    # size (custom or an explicit WxH), fallback (16:9, nothing to take it from).
    ratio: tuple[int, int] | None = None
    ratio_source: str = ""

    @property
    def text(self) -> str:
        return f"{self.width}x{self.height}" if self.width else "auto"

    @property
    def ratio_text(self) -> str:
        return "%d:%d" % self.ratio if self.ratio else ""


def reduce(width: int, height: int) -> tuple[int, int]:
    g = math.gcd(width, height)
    return width // g, height // g


def orientation(width: int, height: int) -> str:
    return "landscape" if width > height else "portrait" if height > width else "square"


def ratio_words(width: int, height: int) -> str:
    """e.g. "16:9 landscape" or "620:877 portrait, about 0.71:1"."""
    w, h = reduce(width, height)
    words = f"{w}:{h} {orientation(w, h)}"
    if max(w, h) > 32:
        words += f", about {w / h:.2f}:1"
    return words


def rule_violations(width: int, height: int, field: str = "size") -> list[FieldViolation]:
    """Every gpt-image-2 rule a WxH breaks, each with its reason."""
    out = []
    if max(width, height) > MAX_EDGE:
        out.append(
            FieldViolation(
                field, f"longest edge {max(width, height)} exceeds {MAX_EDGE}", "INVALID_SIZE"
            )
        )
    for name, edge in (("width", width), ("height", height)):
        if edge % MULTIPLE:
            out.append(
                FieldViolation(
                    field, f"{name} {edge} is not a multiple of {MULTIPLE}", "INVALID_SIZE"
                )
            )
    if min(width, height) == 0 or Fraction(max(width, height), min(width, height)) > MAX_RATIO:
        out.append(
            FieldViolation(
                field, f"aspect {width}:{height} is wider than {MAX_RATIO}:1", "INVALID_SIZE"
            )
        )
    pixels = width * height
    if pixels < MIN_PIXELS:
        out.append(
            FieldViolation(
                field, f"{pixels} pixels is below the minimum {MIN_PIXELS}", "INVALID_SIZE"
            )
        )
    if pixels > MAX_PIXELS:
        out.append(
            FieldViolation(
                field, f"{pixels} pixels exceeds the maximum {MAX_PIXELS}", "INVALID_SIZE"
            )
        )
    return out


def parse_aspect(text: str) -> tuple[Aspect | None, list[FieldViolation]]:
    """`W:H`, a named ratio or a ratio source; Aspect("") when empty."""
    value = text.strip().lower()
    if not value:
        return Aspect(""), []
    if value in NAMED_ASPECTS:
        return Aspect("ratio", NAMED_ASPECTS[value]), []
    for kind, names in (
        ("reference", REFERENCE_ASPECTS),
        ("canvas", CANVAS_ASPECTS),
        ("custom", CUSTOM_ASPECTS),
    ):
        if value in names:
            return Aspect(kind), []
    m = _RATIO.match(value)
    if not m or int(m.group(1)) == 0 or int(m.group(2)) == 0:
        return None, [
            FieldViolation(
                "aspect",
                f"{text!r} is not W:H, landscape, portrait, square, reference (参考图比例), "
                "canvas (画布比例) or custom (自定义)",
                "INVALID_ASPECT",
            )
        ]
    w, h = int(m.group(1)), int(m.group(2))
    if Fraction(max(w, h), min(w, h)) > MAX_RATIO:
        return None, [
            FieldViolation(
                "aspect", f"aspect {w}:{h} is wider than {MAX_RATIO}:1", "INVALID_ASPECT"
            )
        ]
    return Aspect("ratio", reduce(w, h)), []


def _floor16(value: int) -> int:
    return value // MULTIPLE * MULTIPLE


def _within_ratio(width: int, height: int) -> bool:
    return min(width, height) > 0 and Fraction(max(width, height), min(width, height)) <= MAX_RATIO


def resolve_preset(preset: Preset, aspect: tuple[int, int]) -> tuple[int, int]:
    """The plugin's size for a preset and a ratio (see the module docstring)."""
    w, h = reduce(*aspect)
    cap = preset.max_pixels
    # Step 1: w and h share no factor, so both w*k and h*k are multiples of
    # 16 exactly when k is; k = 16*m.
    m = min(
        preset.max_edge // (MULTIPLE * max(w, h)), math.isqrt(cap // (MULTIPLE * MULTIPLE * w * h))
    )
    if m >= 1:
        width, height = MULTIPLE * m * w, MULTIPLE * m * h
        if width * height >= MIN_PIXELS and _within_ratio(width, height):
            return width, height
    # Step 2: no exact multiple is valid.
    ratio = min(max(Fraction(w, h), Fraction(1, MAX_RATIO)), Fraction(MAX_RATIO))

    def width_for(height_: int) -> int:
        return _floor16(height_ * ratio.numerator // ratio.denominator)

    height = _floor16(min(preset.max_edge, math.isqrt(cap * ratio.denominator // ratio.numerator)))
    width = width_for(height)
    while height > MULTIPLE and (
        width > preset.max_edge
        or width * height > cap
        or width < MULTIPLE
        or not _within_ratio(width, height)
    ):  # rounding down can pass 3:1
        height -= MULTIPLE
        width = width_for(height)
    while width * height < MIN_PIXELS:
        nh = height + MULTIPLE
        nw = width_for(nh)
        if nw * nh > cap or max(nw, nh) > MAX_EDGE or not _within_ratio(nw, nh):
            break
        width, height = nw, nh
    return width, height


def _ratio_for(
    aspect: Aspect, canvas: tuple[int, int] | None, reference: tuple[int, int] | None
) -> tuple[tuple[int, int] | None, str]:
    if aspect.kind == "ratio":
        return aspect.ratio, "ratio"
    if aspect.kind == "canvas" and canvas:
        return reduce(*canvas), "canvas"
    if aspect.kind in ("canvas", "reference"):
        if reference:
            return reduce(*reference), "reference"
        return FALLBACK_ASPECT, "fallback"
    return None, ""


def resolve(
    size: str,
    aspect: str,
    *,
    canvas: tuple[int, int] | None = None,
    reference: tuple[int, int] | None = None,
) -> tuple[ResolvedSize | None, list[FieldViolation]]:
    """Validate `size` and `aspect` into a ResolvedSize. `canvas` is the
    caller's canvas size and `reference` the first reference's size, for the
    aspects that take their ratio from them."""
    parsed, violations = parse_aspect(aspect)
    value = size.strip()
    m = _WXH.match(value.lower())
    preset = PRESETS.get(value.upper())
    if parsed is not None and parsed.kind == "custom" and not m:
        violations.append(
            FieldViolation(
                "size",
                f"aspect {aspect.strip()!r} (custom) takes its ratio from an explicit size WxH, "
                f"and {size.strip() or 'auto'!r} is not one",
                "INVALID_SIZE",
            )
        )
        return None, violations
    if m:
        width, height = int(m.group(1)), int(m.group(2))
        violations.extend(rule_violations(width, height))
        if violations:
            return None, violations
        return ResolvedSize(f"{width}x{height}", width, height, reduce(width, height), "size"), []
    if value.lower() not in ("", "auto") and not preset:
        violations.append(
            FieldViolation(
                "size",
                f"{size!r} is not auto, WxH or one of {', '.join(PRESETS)} (any case)",
                "INVALID_SIZE",
            )
        )
    if violations:
        return None, violations
    assert parsed is not None  # parse_aspect gives None only with a violation
    ratio, source = _ratio_for(parsed, canvas, reference)
    if not preset:
        return ResolvedSize("auto", ratio=ratio, ratio_source=source), []
    if ratio is None:
        ratio, source = NAMED_ASPECTS["square"], "default"
    width, height = resolve_preset(preset, ratio)
    return ResolvedSize(preset.name, width, height, ratio, source), []
