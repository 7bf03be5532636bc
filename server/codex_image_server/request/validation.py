"""Checks a GenerateParams and collects every violation at once, so a caller
fixes all its fields in one round trip."""

from __future__ import annotations

import dataclasses
import re
import secrets
from typing import Any

from codex_image_server.errors import FieldViolation, invalid
from codex_image_server.finishing import transparency
from codex_image_server.request import imaging, sizes
from codex_image_server.request.params import (
    MAX_COUNT,
    OUTPUT_FORMATS,
    QUALITIES,
    GenerateParams,
    GenerationSpec,
    Reference,
)
from codex_image_server.settings import Settings

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Choices and sizes are short words; anything longer is refused before it is
# parsed, so no message ever repeats a long value.
_SHORT_TEXT = 64
_LABEL_CHARS = 200
_TEXT_REASONS = {
    "prompt": "INVALID_PROMPT",
    "size": "INVALID_SIZE",
    "aspect": "INVALID_ASPECT",
    "quality": "INVALID_QUALITY",
    "output_format": "INVALID_OUTPUT_FORMAT",
    "request_id": "INVALID_REQUEST_ID",
    "fit": "INVALID_FIT",
}


def shown(value: str, limit: int = 32) -> str:
    """A value as an error message may echo it: quoted and cut short."""
    return repr(value[:limit]) + ("..." if len(value) > limit else "")


def text_violation(
    value: str, field: str, max_chars: int, reason: str, too_long_reason: str | None = None
) -> FieldViolation | None:
    """NUL, lone surrogates (not Unicode, so not storable) and excess length."""
    if "\x00" in value:
        return FieldViolation(field, "contains a NUL character", reason)
    if _LONE_SURROGATE.search(value):
        return FieldViolation(
            field, "contains a lone UTF-16 surrogate, which is not valid Unicode", reason
        )
    if len(value) > max_chars:
        return FieldViolation(
            field,
            f"is {len(value)} characters long; at most {max_chars} allowed",
            too_long_reason or reason,
        )
    return None


def usable_request_id(params: GenerateParams) -> str:
    """The caller's request id when it is well-formed, else a new one."""
    if params.request_id and _REQUEST_ID.match(params.request_id):
        return params.request_id
    return "req_" + secrets.token_hex(8)


def _choice(
    value: str,
    allowed: tuple[str, ...],
    default: str,
    field: str,
    reason: str,
    aliases: dict[str, str] | None = None,
) -> tuple[str, list[FieldViolation]]:
    v = value.strip().lower() or default
    v = (aliases or {}).get(v, v)
    if v not in allowed:
        return default, [
            FieldViolation(field, f"{shown(value)} is not one of {', '.join(allowed)}", reason)
        ]
    return v, []


def _declared_size(ref, info: imaging.ImageInfo, i: int) -> list[FieldViolation]:
    """A declared width/height must describe the bytes' shape. The bytes win
    (they are what the model sees), but a disagreeing ratio is refused rather
    than silently used: the caller computed its expected size from its own
    numbers, and would get an image of another shape. A smaller copy of the
    same ratio (a downscaled layer) is fine."""
    field = f"references[{i}]"
    if not ref.width and not ref.height:
        return []
    bad = [
        FieldViolation(
            f"{field}.{name}", f"{value} is not a positive pixel count", "INVALID_REFERENCE"
        )
        for name, value in (("width", ref.width), ("height", ref.height))
        if value <= 0
    ]
    if bad:
        return bad
    dw, dh, bw, bh = ref.width, ref.height, info.width, info.height
    if abs(dw * bh - dh * bw) > max(dw, dh, bw, bh):  # more than a pixel of rounding apart
        return [
            FieldViolation(
                f"{field}.width",
                f"declared {dw}x{dh} ({sizes.ratio_words(dw, dh)}) but the image decodes as "
                f"{bw}x{bh} ({sizes.ratio_words(bw, bh)}); send the size of the bytes you send, "
                "or omit "
                "width and height",
                "REFERENCE_SIZE_MISMATCH",
            )
        ]
    return []


def _references(
    params: GenerateParams, settings: Settings
) -> tuple[list[Reference], list[FieldViolation]]:
    refs: list[Reference] = []
    bad: list[FieldViolation] = []
    if len(params.references) > settings.max_references:
        bad.append(
            FieldViolation(
                "references",
                f"{len(params.references)} references given, at most {settings.max_references} "
                "allowed",
                "TOO_MANY_REFERENCES",
            )
        )
        return refs, bad
    for i, ref in enumerate(params.references):
        field = f"references[{i}].image"
        for name, value, limit in (
            ("label", ref.label, _LABEL_CHARS),
            ("mime_type", ref.mime_type, _SHORT_TEXT),
            ("source", ref.source, _LABEL_CHARS),
        ):
            problem = text_violation(value, f"references[{i}].{name}", limit, "INVALID_REFERENCE")
            if problem:
                bad.append(problem)
        if not ref.image:
            bad.append(FieldViolation(field, "is empty", "INVALID_REFERENCE"))
            continue
        if len(ref.image) > settings.max_reference_bytes:
            bad.append(
                FieldViolation(
                    field,
                    f"{len(ref.image)} bytes exceeds the limit of {settings.max_reference_bytes}",
                    "REFERENCE_TOO_LARGE",
                )
            )
            continue
        try:
            # The header only: decoding waits for a slot and for decode memory (generation.py).
            info = imaging.identify(ref.image, settings.max_reference_pixels)
        except imaging.BadImage as exc:
            bad.append(FieldViolation(field, str(exc), "INVALID_REFERENCE"))
            continue
        declared_bad = _declared_size(ref, info, i)
        if declared_bad:
            bad += declared_bad
            continue
        refs.append(
            Reference(
                i,
                ref.image,
                info.mime_type,
                info.width,
                info.height,
                ref.label.strip()[:200],
                ref.source.strip()[:100],
            )
        )
    return refs, bad


def _text_fields(
    params: GenerateParams, settings: Settings
) -> tuple[list[FieldViolation], set[str]]:
    """Checked before anything else reads them; returns the violations and the bad fields' names."""
    bad = []
    for field, reason in _TEXT_REASONS.items():
        limit = settings.max_prompt_chars if field == "prompt" else _SHORT_TEXT
        problem = text_violation(
            getattr(params, field),
            field,
            limit,
            reason,
            "PROMPT_TOO_LONG" if field == "prompt" else None,
        )
        if problem:
            bad.append(problem)
    return bad, {v.field for v in bad}


def _canvas(params: GenerateParams) -> tuple[tuple[int, int] | None, list[FieldViolation]]:
    if params.canvas_size is None:
        return None, []
    bad = [
        FieldViolation(
            f"canvas_size.{name}", f"{value} is not a positive pixel count", "INVALID_CANVAS_SIZE"
        )
        for name, value in zip(("width", "height"), params.canvas_size, strict=True)
        if value <= 0
    ]
    return (None if bad else params.canvas_size), bad


def _reference_size(params: GenerateParams, refs: list[Reference]) -> tuple[int, int] | None:
    """The first reference's size for the ratio: as declared (the caller
    computed its own expected size from it), else as decoded."""
    if not refs or refs[0].index != 0:
        return None
    first = params.references[0]
    if first.width > 0 and first.height > 0:
        return first.width, first.height
    return refs[0].width, refs[0].height


def validate(params: GenerateParams, settings: Settings) -> GenerationSpec:
    bad, broken = _text_fields(params, settings)
    if broken:
        # Blank out what cannot be read safely; the other fields still get checked.
        blank: dict[str, Any] = dict.fromkeys(broken, "")
        params = dataclasses.replace(params, **blank)
    prompt = params.prompt.strip()
    if not prompt and not params.references and "prompt" not in broken:
        bad.append(
            FieldViolation("prompt", "is required unless references are given", "MISSING_PROMPT")
        )
    count = params.count or 1
    if not 1 <= count <= MAX_COUNT:
        bad.append(
            FieldViolation("count", f"{params.count} is outside 1..{MAX_COUNT}", "INVALID_COUNT")
        )
    refs, r_bad = _references(params, settings)
    canvas, c_bad = _canvas(params)
    size, size_bad = sizes.resolve(
        params.size, params.aspect, canvas=canvas, reference=_reference_size(params, refs)
    )
    bad += size_bad + c_bad
    quality, q_bad = _choice(params.quality, QUALITIES, "auto", "quality", "INVALID_QUALITY")
    bad += q_bad
    output_format, f_bad = _choice(
        params.output_format,
        OUTPUT_FORMATS,
        "png",
        "output_format",
        "INVALID_OUTPUT_FORMAT",
        aliases={"jpg": "jpeg"},
    )
    bad += f_bad
    if params.request_id and not _REQUEST_ID.match(params.request_id):
        bad.append(
            FieldViolation(
                "request_id", "must be 1-64 letters, digits, '.', '_' or '-'", "INVALID_REQUEST_ID"
            )
        )
    background, b_bad = _choice(
        params.background, transparency.BACKGROUNDS, "auto", "background", "INVALID_BACKGROUND"
    )
    bad += b_bad
    if (
        background == "transparent"
        and not f_bad
        and output_format not in transparency.ALPHA_FORMATS
    ):
        # Both fields are named: either one is the fix.
        alpha_formats = " or ".join(transparency.ALPHA_FORMATS)
        why = f"a transparent background needs {alpha_formats}; {output_format} has no alpha"
        bad += [
            FieldViolation("background", why, "TRANSPARENT_NEEDS_ALPHA_FORMAT"),
            FieldViolation("output_format", why, "TRANSPARENT_NEEDS_ALPHA_FORMAT"),
        ]
    compression = params.output_compression
    if compression is not None and not 0 <= compression <= 100:
        bad.append(
            FieldViolation(
                "output_compression",
                f"{compression} is outside 0..100",
                "INVALID_OUTPUT_COMPRESSION",
            )
        )
    fit, fit_bad = _choice(params.fit, sizes.FITS, "exact", "fit", "INVALID_FIT")
    bad += fit_bad + r_bad
    if bad:
        raise invalid(bad)
    assert size is not None  # no violations: the size resolved
    return GenerationSpec(
        request_id=usable_request_id(params),
        prompt=prompt,
        count=count,
        size=size,
        aspect=params.aspect.strip().lower(),
        quality=quality,
        output_format=output_format,
        references=tuple(refs),
        fit=fit,
        background=background,
        output_compression=compression,
        key_color=transparency.key_color(prompt) if background == "transparent" else None,
    )
