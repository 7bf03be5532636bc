"""Turning what a codex run printed into the error a caller can act on.

Measured on 0.169.0 (tests/upstream_standin/FINDINGS.md): a failed turn exits
1 with `turn.failed`; an Images API failure exits 0 and shows only on stderr
(`ERROR ... error=image generation failed: http 403 ...`) and in the rollout;
quota text carries `usage_limit_reached` and `resets_at`, or is rewritten by
codex into "You've hit your usage limit ... try again at <time>".
"""

from __future__ import annotations

import datetime as dt
import re

from codex_image_server.engine import versions
from codex_image_server.engine.safe_text import ERROR_TEXT_MAX, MODEL_TEXT_MAX, safe
from codex_image_server.errors import Kind, ServiceError, codex_unsupported, moderation_blocked

_QUOTA = re.compile(r"\b429\b|usage_limit_reached|usage limit|rate limit|quota", re.IGNORECASE)
_RESETS_AT = re.compile(r'resets?_at[\\"]*\s*[:=]\s*[\\"]*(\d{9,11})')
_RESETS_IN = re.compile(r'resets?_in_seconds[\\"]*\s*[:=]\s*(\d+)')
_TOOL_FAILED = re.compile(r"image generation failed: (.*)")
_HTTP_STATUS = re.compile(r"\bhttp (\d{3})\b")
_TRANSIENT = re.compile(
    r"\b5\d\d\b|disconnect|timed? ?out|connection|unavailable|overloaded|high demand", re.IGNORECASE
)
# The Images API's safety refusal, as codex passes it on (measured with the
# stand-in's `moderation` switch): `image generation failed: http 400 Bad
# Request: Some("{\"error\": {\"type\": \"image_generation_user_error\",
# \"code\": \"moderation_blocked\", ... \"message\": \"Your request was
# rejected by the safety system...\"}}")`.
_MODERATION = re.compile(r"moderation_blocked|rejected by the safety system", re.IGNORECASE)
_SAFETY_MESSAGE = re.compile(r'message[\\"]*\s*:\s*[\\"]+([^"\\]+)')


def _short(text: str) -> str:
    """Codex's (or the upstream's) words, as much of them as a caller may see."""
    return safe(text, ERROR_TEXT_MAX)


def quota_error(texts: list[str]) -> ServiceError | None:
    joined = "\n".join(t for t in texts if t)
    if not _QUOTA.search(joined):
        return None
    meta, retry = {}, None
    m = _RESETS_AT.search(joined)
    if m:
        at = dt.datetime.fromtimestamp(int(m.group(1)), dt.UTC)
        meta["resets_at"] = at.isoformat().replace("+00:00", "Z")
        retry = max(0, int(at.timestamp() - dt.datetime.now(dt.UTC).timestamp()))
    m = _RESETS_IN.search(joined)
    if m and retry is None:
        retry = int(m.group(1))
    when = f" It resets at {meta['resets_at']}." if "resets_at" in meta else ""
    said = next((_short(t) for t in texts if t and _QUOTA.search(t)), "")
    return ServiceError(
        Kind.RESOURCE_EXHAUSTED,
        "QUOTA_EXHAUSTED",
        f"Codex image generation quota is used up.{when} Wait for the reset or check "
        f"your ChatGPT plan's limits. Codex said: {said}",
        metadata=meta,
        retry_after_s=retry,
    )


def tool_failure(texts: list[str]) -> ServiceError | None:
    """The imagegen tool ran and the Images API refused (exit 0, no image)."""
    for text in texts:
        m = _TOOL_FAILED.search(text or "")
        if not m:
            continue
        if _MODERATION.search(m.group(1)):
            said = _SAFETY_MESSAGE.search(m.group(1))
            return moderation_blocked(_short(said.group(1) if said else m.group(1)))
        status = _HTTP_STATUS.search(m.group(1))
        code = int(status.group(1)) if status else 0
        kind = (
            Kind.PERMISSION_DENIED
            if code in (401, 403)
            else Kind.UNAVAILABLE
            if code >= 500 or not code
            else Kind.FAILED_PRECONDITION
        )
        return ServiceError(
            kind,
            "CODEX_IMAGE_FAILED",
            f"the image model refused the request: image generation failed: {_short(m.group(1))}",
            metadata={"upstream_status": str(code)} if code else {},
        )
    return None


def failed_turn(reason_text: str, exit_code: int | None) -> ServiceError:
    text = _short(reason_text) or f"codex exited with status {exit_code}"
    kind = Kind.UNAVAILABLE if _TRANSIENT.search(text) else Kind.INTERNAL
    return ServiceError(
        kind,
        "CODEX_EXEC_FAILED",
        f"codex could not finish the image: {text}",
        metadata={"exit_code": str(exit_code)},
    )


def no_image(last_message: str) -> ServiceError:
    # The model's own words: it may have been talked into quoting what it read.
    said = safe(last_message, MODEL_TEXT_MAX) or "(no message)"
    return ServiceError(
        Kind.INTERNAL,
        "CODEX_NO_IMAGE",
        f"codex finished without producing an image. Its last message: {said}",
    )


def unsupported(codex_version: str, signs: list[str]) -> ServiceError:
    """Codex made an image this server cannot read: a shape it does not know."""
    seen = _short("; ".join(dict.fromkeys(signs))) or "an image in an unknown shape"
    return codex_unsupported(
        versions.number(codex_version) or codex_version,
        versions.tested_range(),
        versions.TESTED,
        seen,
    )
