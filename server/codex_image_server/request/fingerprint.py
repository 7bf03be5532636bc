"""What a request asked for, kept short: one digest per parameter of the
validated request, named as GenerateRequest names it. A repeat of a request
id is the same request only when every digest matches; otherwise the first
parameter that differs is named (AIP-155: the same id with other parameters
is a caller's mistake, not a new request).

Validated values are compared, so spellings that mean the same request (a
count left out or 1, "jpg" or "jpeg") match; the request id and the webhook
(where to tell, not what to make) are not part of it."""

from __future__ import annotations

import hashlib
import json

from codex_image_server.request.params import GenerationSpec


def _digest(*parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, (bytes, memoryview)) else repr(part).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def of(spec: GenerationSpec) -> str:
    """JSON {field: digest}, in the order GenerateRequest declares its fields."""
    return json.dumps(
        {
            "prompt": _digest(spec.prompt),
            "count": _digest(spec.count),
            "size": _digest(spec.size.requested, spec.size.text, spec.size.ratio),
            "aspect": _digest(spec.aspect),
            "quality": _digest(spec.quality),
            "output_format": _digest(spec.output_format),
            "references": _digest(
                *(part for r in spec.references for part in (r.image, r.mime_type, r.label))
            ),
            "background": _digest(spec.background),
            "output_compression": _digest(spec.output_compression),
            "fit": _digest(spec.fit),
        },
        separators=(",", ":"),
    )


def differing_field(old: str, new: str) -> str | None:
    """The first parameter whose digest differs, or None. An earlier request
    recorded without one (before fingerprints were kept) differs in `request_id`."""
    if not old:
        return "request_id"
    before, now = json.loads(old), json.loads(new)
    return next((field for field in now if before.get(field) != now[field]), None)
