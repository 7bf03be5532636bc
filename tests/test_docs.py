"""README and docs/ are what a new user runs and reads: keep them short,
linked and in step with the code."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from codex_image_server import banner, settings
from codex_image_server.engine import binary
from codex_image_server.engine.readiness import Readiness

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SETTINGS_DOC = REPO / "docs" / "operating.md"
README_MAX_LINES = 300
# Every Markdown file a reader can reach from README.
PAGES = [
    README,
    REPO / "CHANGELOG.md",
    REPO / "deploy" / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
]

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to
    hyphens, repeats numbered."""
    seen: dict[str, int] = {}
    out = set()
    for line in _FENCE.sub("", page.read_text()).splitlines():
        if not line.startswith("#"):
            continue
        text = line.lstrip("#").strip().lower()
        slug = re.sub(r"[^\w\- ]", "", text, flags=re.U).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def links(page: Path) -> list[str]:
    text = _FENCE.sub("", page.read_text())
    return [a or b for a, b in _LINK.findall(text)]


def test_readme_is_a_first_read():
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; the reference belongs in docs/"


def test_every_relative_link_and_anchor_is_alive():
    dead = []
    for page in PAGES:
        for target in links(page):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            goal = (page.parent / path).resolve() if path else page
            if not goal.exists():
                dead.append(f"{page.relative_to(REPO)}: {target} (no such file)")
            elif anchor and goal.suffix == ".md" and anchor not in anchors(goal):
                dead.append(
                    f"{page.relative_to(REPO)}: {target} (no heading #{anchor} in {goal.name})"
                )
    assert not dead, "dead links:\n" + "\n".join(dead)


def test_the_link_check_can_fail(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# A title\n\n[ok](#a-title) [gone](#no-title) [file](missing.md)\n")
    assert anchors(page) == {"a-title"}
    assert links(page) == ["#a-title", "#no-title", "missing.md"]


def test_every_setting_is_in_the_settings_reference():
    """Each setting's variable and flag on one row of docs/operating.md's table;
    the failure names each missing setting and a row to paste."""
    rows = [line for line in SETTINGS_DOC.read_text().splitlines() if line.startswith("| `")]
    missing = []
    for option in settings.OPTIONS:
        env, flag = option.env, option.flag
        if not any(f"`{env}`" in row and f"`{flag}" in row for row in rows):
            missing.append(
                f"{option.name}: | `{env}` | `{flag}` | {settings.shown_default(option.name)} | "
                f"{option.help} |"
            )
    assert not missing, "docs/operating.md's settings table lacks:\n" + "\n".join(missing)


def test_readme_shows_the_banner_the_server_prints():
    """README's start-up lines are what banner.render prints for a checkout
    whose codex is not logged in yet, on the default ports."""
    fix = f"{binary.PINNED_WRAPPER.relative_to(binary.PROJECT_ROOT)} login"
    ready = Readiness(
        True, "/x/codex", "codex-cli 0.169.0", problem="codex is not logged in. Run ...", fix=fix
    )
    shown = banner.render("127.0.0.1", 17342, "127.0.0.1", 17341, ready, auth_required=False)
    assert shown in README.read_text(), shown
    assert f"{fix}          # a browser" in README.read_text()


def test_the_pinned_codex_is_the_makefiles():
    pinned = re.search(r"^CODEX_VERSION := (\S+)$", (REPO / "Makefile").read_text(), re.M).group(1)
    assert binary.PINNED_VERSION == pinned
    assert f"@openai/codex@{pinned}" in README.read_text()


def test_ci_runs_the_test_command_readme_gives():
    assert "make test" in README.read_text()
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_make_help_lists_the_main_targets():
    out = subprocess.run(
        ["make", "--no-print-directory", "help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    listed = {
        line.split()[1]: line for line in out.splitlines() if line.strip().startswith("make ")
    }
    for target in ("run", "test", "bench", "stress", "cluster", "lint", "help", "dist"):
        assert target in listed and len(listed[target].split()) > 2, (target, out)
    assert len(listed) <= 25, "make help is for the main targets"


def test_make_test_prints_the_slowest_tests():
    """`make test` is one pass over xdist's workers, grouped
    (tests/conftest.py), ending with pytest's slowest tests."""
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^TEST_DURATIONS \?= 15$", makefile, re.M)
    recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0].replace("\\\n", " ")
    passes = re.findall(r"^\t\$\(PY\) -m pytest (.*)$", recipe, re.M)
    assert len(passes) == 1, recipe
    assert "--durations=$(TEST_DURATIONS)" in passes[0] and "$(PYTEST_ARGS)" in passes[0], passes
    assert "-n $(TEST_WORKERS) --dist loadgroup" in passes[0]


def test_every_debian_package_comes_through_the_one_script():
    for mk in [REPO / "Makefile", *sorted((REPO / "mk").glob("*.mk"))]:
        assert "apt-get" not in mk.read_text(), f"{mk.name} calls apt-get: use $(APT_INSTALL)"
