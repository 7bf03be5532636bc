"""README is what a new user runs and reads: keep it in step with the code."""
from __future__ import annotations

from pathlib import Path

from codex_image_server import settings

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
DOCS = README + "".join(path.read_text() for path in sorted((REPO / "docs").glob("*.md")))


def test_every_setting_is_documented():
    missing = [settings.env_name(f) for f, _, _ in settings.FIELDS if f"`{settings.env_name(f)}`" not in DOCS]
    assert not missing, f"neither README's settings table nor docs/ documents {missing}"


def test_ci_runs_the_test_command_readme_gives():
    assert "make test" in README
    assert "make test" in (REPO / ".ci" / "run").read_text()
