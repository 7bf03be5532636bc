"""The codex versions this server is proven on, and what to say about others.

`TESTED` is the Makefile's CODEX_VERSIONS: `make test-codex` runs the
real-codex end-to-end suite against each (tests/test_codex_versions.py keeps
the two lists equal). Another version may well work (it is still used), but
health says it is untested, and a run whose rollout it writes in a shape we
do not know fails as CODEX_UNSUPPORTED naming the version and this range.
"""

from __future__ import annotations

import re

TESTED = ("0.169.0", "0.170.0", "0.171.0")
_VERSION = re.compile(r"\b(\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?)\b")


def number(text: str) -> str:
    """ "codex-cli 0.171.0" -> "0.171.0" ("" when no version is in it)."""
    match = _VERSION.search(text or "")
    return match.group(1) if match else ""


def tested(version_text: str) -> bool:
    return number(version_text) in TESTED


def tested_range() -> str:
    """ "0.169.0-0.171.0 (0.169.0, 0.170.0, 0.171.0)"."""
    return f"{TESTED[0]}-{TESTED[-1]} ({', '.join(TESTED)})"


def warning(version_text: str) -> str:
    """The health warning for an untested codex, or "" for a tested one."""
    if not version_text or tested(version_text):
        return ""
    found = number(version_text) or version_text.strip()[:40]
    return (
        f"warning: codex {found} is outside the tested range {tested_range()}; it may work, and "
        "a run "
        "whose image this server cannot read fails as CODEX_UNSUPPORTED. Install a tested version "
        "(`make codex`) or set CODEX_IMAGE_SERVER_CODEX_BIN to one."
    )
