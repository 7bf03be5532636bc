"""Turning what a codex run printed into the error a caller can act on."""
from __future__ import annotations

import datetime as dt
import re

from ..errors import Kind, ServiceError

_QUOTA = re.compile(r"\b429\b|usage_limit_reached|usage limit|rate limit|quota", re.IGNORECASE)
_RESETS_AT = re.compile(r"resets?_at\"?\s*[:=]\s*\"?(\d{9,11})")
_RESETS_IN = re.compile(r"resets?_in_seconds\"?\s*[:=]\s*(\d+)")
_TRANSIENT = re.compile(r"\b5\d\d\b|disconnect|timed? ?out|connection|unavailable|overloaded|stream",
                        re.IGNORECASE)
_MESSAGE_MAX = 500


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_MAX else text[:_MESSAGE_MAX] + "..."


def quota_error(texts: list[str]) -> ServiceError | None:
    joined = "\n".join(texts)
    if not _QUOTA.search(joined):
        return None
    meta, retry = {}, None
    m = _RESETS_AT.search(joined)
    if m:
        at = dt.datetime.fromtimestamp(int(m.group(1)), dt.timezone.utc)
        meta["resets_at"] = at.isoformat().replace("+00:00", "Z")
        retry = max(0, int(at.timestamp() - dt.datetime.now(dt.timezone.utc).timestamp()))
    m = _RESETS_IN.search(joined)
    if m and retry is None:
        retry = int(m.group(1))
    when = f" It resets at {meta['resets_at']}." if "resets_at" in meta else ""
    return ServiceError(Kind.RESOURCE_EXHAUSTED, "QUOTA_EXHAUSTED",
                        f"Codex image generation quota is used up (HTTP 429 usage_limit_reached).{when} "
                        "Wait for the reset or check your ChatGPT plan's limits.",
                        metadata=meta, retry_after_s=retry)


def failed_turn(reason_text: str, exit_code: int | None) -> ServiceError:
    text = _short(reason_text) or f"codex exited with status {exit_code}"
    kind = Kind.UNAVAILABLE if _TRANSIENT.search(text) else Kind.INTERNAL
    return ServiceError(kind, "CODEX_EXEC_FAILED", f"codex could not finish the image: {text}",
                        metadata={"exit_code": str(exit_code)})


def no_image(last_message: str) -> ServiceError:
    said = _short(last_message) or "(no message)"
    return ServiceError(Kind.INTERNAL, "CODEX_NO_IMAGE",
                        f"codex finished without producing an image. Its last message: {said}")
