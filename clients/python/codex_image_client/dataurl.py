"""Images written as text: a `data:<mime>;base64,...` URL or bare base64
(either alphabet, padding optional). The one decoder the HTTP shim, the
OpenAI surface and the MCP tools share."""

from __future__ import annotations

import base64
import binascii
import re

_DATA_URL = re.compile(r"^data:([^;,]*)((?:;[^;,]*)*),(.*)$", re.S)


class NotAnImage(ValueError):
    """The text is not a base64 image; the message says what is wrong with it."""


def is_data_url(value: str) -> bool:
    return value.lstrip().startswith("data:")


def decode(value: str, where: str) -> tuple[bytes, str]:
    """(bytes, declared mime type, lower-cased; "" for bare base64)."""
    mime = ""
    payload = value.strip()
    if payload.startswith("data:"):
        found = _DATA_URL.match(payload)
        if not found or ";base64" not in found.group(2).lower():
            raise NotAnImage(f"{where} is not a base64 data URL (data:<mime>;base64,...)")
        mime, payload = found.group(1).strip().lower(), found.group(3)
    payload = re.sub(r"\s+", "", payload)
    if "-" in payload or "_" in payload:
        payload = payload.replace("-", "+").replace("_", "/")  # URL-safe alphabet
    payload += "=" * (-len(payload) % 4)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise NotAnImage(f"{where} is not valid base64") from None
    if not data:
        raise NotAnImage(f"{where} is empty")
    return data, mime
