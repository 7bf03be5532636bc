"""Free text from codex (the model's own words, codex's errors, an upstream's
body) cut down to a short reason that is safe to hand a caller.

The model may have been talked into quoting what it read, so the text is
treated as hostile: whitespace folded, file paths replaced by `<path>`,
anything that looks like a secret (long opaque tokens, `sk-...` keys,
`name = "value"` settings, bearer credentials) by `<redacted>`, and the
result capped. What is left still says why a run ended ("I can't make that
image", "http 403 Forbidden", "usage limit ... try again at 6:43 AM").
"""

from __future__ import annotations

import re

# The model's own words; codex's and the upstream's errors get a little more.
MODEL_TEXT_MAX = 200
ERROR_TEXT_MAX = 300

# A path standing on its own (not the tail of a URL such as https://x/y):
# `/a/b`, `~/a`, `./a/b`, `C:\a`.
_PATH = re.compile(
    r"""(?<![\w:/.~\\])(?:~|\.{1,2})?/[^\s"'<>(){}\[\],;]+|\b[A-Za-z]:\\[^\s"'<>]+"""
)
# `name = value` / `name: value` where the name says it is a credential.
_CREDENTIAL = re.compile(
    r"""(?i)\b([\w.-]*(?:key|token|secret|passw(?:or)?d|auth\w*|cookie|credential)s?)(\s*[=:]\s*)"""
    r"""("[^"]*"?|'[^']*'?|\S+)"""
)
# A TOML/INI/env style setting with a quoted value: config text read off disk.
_QUOTED_SETTING = re.compile(r"""\b([\w.-]+)(\s*=\s*)("[^"]*"?|'[^']*'?)""")
_BEARER = re.compile(r"(?i)\bbearer\s+\S+")
# Opaque tokens: 24+ characters of key/base64 alphabet with letters and digits both.
_TOKEN = re.compile(
    r"\b(?=[A-Za-z0-9_\-+/=]*\d)(?=[A-Za-z0-9_\-+/=]*[A-Za-z])[A-Za-z0-9_\-+/=]{24,}"
)
_SK = re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}")


def safe(text: str, limit: int = MODEL_TEXT_MAX) -> str:
    """`text` folded to one line, paths and secret-like parts replaced, at most
    `limit` characters (plus an ellipsis)."""
    text = " ".join(str(text or "").split())
    if not text:
        return ""
    # Cap first (generously) so a huge text costs little to scan.
    text = text[: limit * 4]
    text = _BEARER.sub("Bearer <redacted>", text)
    text = _CREDENTIAL.sub(lambda m: f"{m.group(1)}{m.group(2)}<redacted>", text)
    text = _QUOTED_SETTING.sub(lambda m: f"{m.group(1)}{m.group(2)}<redacted>", text)
    text = _SK.sub("<redacted>", text)
    text = _PATH.sub("<path>", text)
    text = _TOKEN.sub("<redacted>", text)
    return text if len(text) <= limit else text[:limit].rstrip() + "..."
