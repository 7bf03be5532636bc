"""gpt-image-2 size rules and presets: the one place sizes are validated.

Rules: longest edge <= 3840, both edges multiples of 16, long:short <= 3:1,
655,360 <= pixels <= 8,294,400. A preset with an aspect resolves to the
largest valid size under the preset's cap, never below the minimum.
"""
from __future__ import annotations

import dataclasses
import re
from fractions import Fraction

from .errors import FieldViolation

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


PRESETS = {p.name: p for p in (
    Preset("1K", 1024, 1024 * 1024),
    Preset("2K", 2048, 2048 * 2048),
    Preset("4K", 3840, MAX_PIXELS),
)}

NAMED_ASPECTS = {"landscape": (16, 9), "portrait": (9, 16), "square": (1, 1)}
RATIO_OPTIONS = ("1:1", "16:9", "9:16", "3:2", "2:3", "4:3", "3:4", "4:5", "5:4", "21:9")
SIZE_OPTIONS = ("auto", "1024x1024", "1536x1024", "1024x1536", "2048x2048", "2048x1152",
                "1152x2048", "3840x2160", "2160x3840", "2880x2880", "1K", "2K", "4K")

_WXH = re.compile(r"^(\d{1,5})x(\d{1,5})$")
_RATIO = re.compile(r"^(\d{1,4}):(\d{1,4})$")


@dataclasses.dataclass(frozen=True)
class ResolvedSize:
    requested: str  # as the caller wrote it, normalised ("auto", "1536x1024", "2K")
    width: int = 0  # 0 for auto
    height: int = 0

    @property
    def text(self) -> str:
        return f"{self.width}x{self.height}" if self.width else "auto"


def rule_violations(width: int, height: int, field: str = "size") -> list[FieldViolation]:
    """Every gpt-image-2 rule a WxH breaks, each with its reason."""
    out = []
    if max(width, height) > MAX_EDGE:
        out.append(FieldViolation(field, f"longest edge {max(width, height)} exceeds {MAX_EDGE}", "INVALID_SIZE"))
    for name, edge in (("width", width), ("height", height)):
        if edge % MULTIPLE:
            out.append(FieldViolation(field, f"{name} {edge} is not a multiple of {MULTIPLE}", "INVALID_SIZE"))
    if min(width, height) == 0 or Fraction(max(width, height), min(width, height)) > MAX_RATIO:
        out.append(FieldViolation(field, f"aspect {width}:{height} is wider than {MAX_RATIO}:1", "INVALID_SIZE"))
    pixels = width * height
    if pixels < MIN_PIXELS:
        out.append(FieldViolation(field, f"{pixels} pixels is below the minimum {MIN_PIXELS}", "INVALID_SIZE"))
    if pixels > MAX_PIXELS:
        out.append(FieldViolation(field, f"{pixels} pixels exceeds the maximum {MAX_PIXELS}", "INVALID_SIZE"))
    return out


def parse_aspect(text: str) -> tuple[tuple[int, int] | None, list[FieldViolation]]:
    """`W:H` or a named aspect; None when empty."""
    value = text.strip().lower()
    if not value:
        return None, []
    if value in NAMED_ASPECTS:
        return NAMED_ASPECTS[value], []
    m = _RATIO.match(value)
    if not m or int(m.group(1)) == 0 or int(m.group(2)) == 0:
        return None, [FieldViolation(
            "aspect", f"{text!r} is not W:H, landscape, portrait or square", "INVALID_ASPECT")]
    w, h = int(m.group(1)), int(m.group(2))
    if Fraction(max(w, h), min(w, h)) > MAX_RATIO:
        return None, [FieldViolation("aspect", f"aspect {w}:{h} is wider than {MAX_RATIO}:1", "INVALID_ASPECT")]
    return (w, h), []


def _valid(width: int, height: int) -> bool:
    return not rule_violations(width, height)


def resolve_preset(preset: Preset, aspect: tuple[int, int]) -> tuple[int, int]:
    """Largest valid WxH of this aspect under the preset's cap; if even that is
    below the pixel minimum, the smallest valid size of the aspect instead."""
    aw, ah = aspect
    best = None
    smallest_valid = None
    for height in range(MULTIPLE, MAX_EDGE + 1, MULTIPLE):
        width = round(height * aw / ah / MULTIPLE) * MULTIPLE
        if width < MULTIPLE or not _valid(width, height):
            continue
        if smallest_valid is None or width * height < smallest_valid[0] * smallest_valid[1]:
            smallest_valid = (width, height)
        if max(width, height) <= preset.max_edge and width * height <= preset.max_pixels:
            if best is None or width * height > best[0] * best[1]:
                best = (width, height)
    result = best or smallest_valid
    assert result is not None, "every aspect within 3:1 has a valid size"
    return result


def resolve(size: str, aspect: str) -> tuple[ResolvedSize | None, list[FieldViolation]]:
    """Validate `size` (and `aspect`, which only presets use) into a ResolvedSize."""
    ratio, violations = parse_aspect(aspect)
    value = size.strip()
    if value.lower() in ("", "auto"):
        return (None if violations else ResolvedSize("auto")), violations
    preset = PRESETS.get(value.upper())
    if preset:
        if violations:
            return None, violations
        width, height = resolve_preset(preset, ratio or NAMED_ASPECTS["square"])
        return ResolvedSize(preset.name, width, height), []
    m = _WXH.match(value.lower())
    if not m:
        violations.append(FieldViolation(
            "size", f"{size!r} is not auto, WxH or one of {', '.join(PRESETS)}", "INVALID_SIZE"))
        return None, violations
    width, height = int(m.group(1)), int(m.group(2))
    violations.extend(rule_violations(width, height))
    if violations:
        return None, violations
    return ResolvedSize(f"{width}x{height}", width, height), []
