"""Checked-in Go/TypeScript stubs match the protos (regenerated into a temp
tree and compared), and the protos pass buf lint and breaking. The logic is
the make targets'; this runs them so `make test` and CI fail on drift."""

from __future__ import annotations

import subprocess

from tests.support.server_proc import REPO


def make(*targets):
    proc = subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), *targets],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=600,
    )
    assert proc.returncode == 0, (
        f"make {' '.join(targets)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    )
    return proc


def test_generated_code_is_reproducible():
    assert "match the protos" in make("check-generated").stdout


def test_buf_lint_and_breaking():
    make("lint")


def test_breaking_baseline_is_a_released_version():
    """`make lint` checks against the newest protos/baseline/v<version>.binpb:
    the API as last released, never one from the future."""

    def key(v):
        return tuple(int(x) for x in v.split("."))

    versions = [p.name[1 : -len(".binpb")] for p in (REPO / "protos" / "baseline").glob("v*.binpb")]
    assert versions, "no breaking-change baseline"
    newest = max(versions, key=key)
    assert key(newest) <= key((REPO / "VERSION").read_text().strip())
    assert f"--against protos/baseline/v{newest}.binpb" in make("-n", "lint").stdout
