"""One list of tested codex versions: the Makefile's CODEX_VERSIONS (what
`make test-codex` proves) is what the server calls its tested range, and the
pinned CODEX_VERSION is in it."""

from __future__ import annotations

import re
from pathlib import Path

from codex_image_server.engine import tool_surface, versions

REPO = Path(__file__).resolve().parents[1]


def _make_variable(name: str) -> str:
    match = re.search(rf"^{name}\s*:=\s*(.+)$", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert match, f"{name} is not set in the Makefile"
    return match.group(1).strip()


def test_the_makefile_list_is_the_servers_tested_range():
    assert tuple(_make_variable("CODEX_VERSIONS").split()) == versions.TESTED


def test_the_pin_is_the_newest_tested_version():
    assert _make_variable("CODEX_VERSION") == versions.TESTED[-1]


def test_versions_are_told_apart():
    assert versions.number("codex-cli 0.171.0") == "0.171.0" and versions.tested(
        "codex-cli 0.170.0"
    )
    assert not versions.tested("codex-cli 0.172.0") and not versions.tested("")
    assert versions.warning("codex-cli 0.169.0") == "" and versions.warning("") == ""
    assert versions.warning("codex-cli 0.168.2").startswith(
        "warning: codex 0.168.2 is outside the tested range"
    )


def test_every_tested_version_has_its_checked_tool_switches():
    # A version joins the matrix only with its feature names checked: the
    # switches that take the shell away are looked up per version.
    assert tuple(tool_surface.FEATURES_OFF_BY_VERSION) == versions.TESTED
