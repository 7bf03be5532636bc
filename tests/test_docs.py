"""README is what a new user runs and reads: keep it in step with the code."""
from __future__ import annotations

from pathlib import Path

from codex_image_server import settings

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
DOCS = "".join(p.read_text() for p in sorted((REPO / "docs").glob("*.md")))


def test_every_setting_is_documented():
    # In README's settings table, or in the docs/ page of the feature it belongs to.
    missing = [settings.env_name(f) for f, _, _ in settings.FIELDS
               if f"`{settings.env_name(f)}`" not in README + DOCS]
    assert not missing, f"README's settings table (or docs/) lacks {missing}"


def test_ci_runs_the_test_command_readme_gives():
    assert "make test" in README
    assert "make test" in (REPO / ".ci" / "run").read_text()
