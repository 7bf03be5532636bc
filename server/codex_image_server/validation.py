"""Checks a GenerateParams and collects every violation at once, so a caller
fixes all its fields in one round trip."""
from __future__ import annotations

import dataclasses
import re
import secrets

from . import imaging, sizes
from .errors import FieldViolation, invalid
from .request import MAX_COUNT, OUTPUT_FORMATS, QUALITIES, GenerateParams, GenerationSpec, Reference
from .settings import Settings

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Choices and sizes are short words; anything longer is refused before it is
# parsed, so no message ever repeats a long value.
_SHORT_TEXT = 64
_LABEL_CHARS = 200
_TEXT_REASONS = {"prompt": "INVALID_PROMPT", "size": "INVALID_SIZE", "aspect": "INVALID_ASPECT",
                 "quality": "INVALID_QUALITY", "output_format": "INVALID_OUTPUT_FORMAT",
                 "request_id": "INVALID_REQUEST_ID"}


def shown(value: str, limit: int = 32) -> str:
    """A value as an error message may echo it: quoted and cut short."""
    return repr(value[:limit]) + ("..." if len(value) > limit else "")


def text_violation(value: str, field: str, max_chars: int, reason: str,
                   too_long_reason: str | None = None) -> FieldViolation | None:
    """NUL, lone surrogates (not Unicode, so not storable) and excess length."""
    if "\x00" in value:
        return FieldViolation(field, "contains a NUL character", reason)
    if _LONE_SURROGATE.search(value):
        return FieldViolation(field, "contains a lone UTF-16 surrogate, which is not valid Unicode", reason)
    if len(value) > max_chars:
        return FieldViolation(field, f"is {len(value)} characters long; at most {max_chars} allowed",
                              too_long_reason or reason)
    return None


def _choice(value: str, allowed: tuple[str, ...], default: str, field: str, reason: str,
            aliases: dict[str, str] | None = None) -> tuple[str, list[FieldViolation]]:
    v = value.strip().lower() or default
    v = (aliases or {}).get(v, v)
    if v not in allowed:
        return default, [FieldViolation(field, f"{shown(value)} is not one of {', '.join(allowed)}", reason)]
    return v, []


def _references(params: GenerateParams, settings: Settings) -> tuple[list[Reference], list[FieldViolation]]:
    refs, bad = [], []
    if len(params.references) > settings.max_references:
        bad.append(FieldViolation(
            "references", f"{len(params.references)} references given, at most {settings.max_references} allowed",
            "TOO_MANY_REFERENCES"))
        return refs, bad
    for i, ref in enumerate(params.references):
        field = f"references[{i}].image"
        for name, value, limit in (("label", ref.label, _LABEL_CHARS), ("mime_type", ref.mime_type, _SHORT_TEXT)):
            problem = text_violation(value, f"references[{i}].{name}", limit, "INVALID_REFERENCE")
            if problem:
                bad.append(problem)
        if not ref.image:
            bad.append(FieldViolation(field, "is empty", "INVALID_REFERENCE"))
            continue
        if len(ref.image) > settings.max_reference_bytes:
            bad.append(FieldViolation(
                field, f"{len(ref.image)} bytes exceeds the limit of {settings.max_reference_bytes}",
                "REFERENCE_TOO_LARGE"))
            continue
        try:
            # The header only: decoding waits for a slot and for decode memory (generation.py).
            info = imaging.identify(ref.image, settings.max_reference_pixels)
        except imaging.BadImage as exc:
            bad.append(FieldViolation(field, str(exc), "INVALID_REFERENCE"))
            continue
        refs.append(Reference(i, ref.image, info.mime_type, info.width, info.height, ref.label.strip()[:200]))
    return refs, bad


def _text_fields(params: GenerateParams, settings: Settings) -> tuple[list[FieldViolation], set[str]]:
    """Checked before anything else reads them; returns the violations and the bad fields' names."""
    bad = []
    for field, reason in _TEXT_REASONS.items():
        limit = settings.max_prompt_chars if field == "prompt" else _SHORT_TEXT
        problem = text_violation(getattr(params, field), field, limit, reason,
                                 "PROMPT_TOO_LONG" if field == "prompt" else None)
        if problem:
            bad.append(problem)
    return bad, {v.field for v in bad}


def validate(params: GenerateParams, settings: Settings) -> GenerationSpec:
    bad, broken = _text_fields(params, settings)
    if broken:
        # Blank out what cannot be read safely; the other fields still get checked.
        params = dataclasses.replace(params, **{f: "" for f in broken})
    prompt = params.prompt.strip()
    if not prompt and not params.references and "prompt" not in broken:
        bad.append(FieldViolation("prompt", "is required unless references are given", "MISSING_PROMPT"))
    count = params.count or 1
    if not 1 <= count <= MAX_COUNT:
        bad.append(FieldViolation("count", f"{params.count} is outside 1..{MAX_COUNT}", "INVALID_COUNT"))
    size, size_bad = sizes.resolve(params.size, params.aspect)
    bad += size_bad
    quality, q_bad = _choice(params.quality, QUALITIES, "auto", "quality", "INVALID_QUALITY")
    bad += q_bad
    output_format, f_bad = _choice(params.output_format, OUTPUT_FORMATS, "png", "output_format",
                                   "INVALID_OUTPUT_FORMAT", aliases={"jpg": "jpeg"})
    bad += f_bad
    if params.request_id and not _REQUEST_ID.match(params.request_id):
        bad.append(FieldViolation("request_id", "must be 1-64 letters, digits, '.', '_' or '-'",
                                  "INVALID_REQUEST_ID"))
    refs, r_bad = _references(params, settings)
    bad += r_bad
    if bad:
        raise invalid(bad)
    return GenerationSpec(
        request_id=params.request_id or "req_" + secrets.token_hex(8),
        prompt=prompt, count=count, size=size, aspect=params.aspect.strip().lower(),
        quality=quality, output_format=output_format, references=tuple(refs))
