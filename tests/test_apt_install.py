"""mk/apt-install.sh, the one way the Makefile installs Debian packages.
A real apt-get and sudo cannot be made to be missing or to refuse on demand,
so they are stand-ins on a PATH of their own that record how they were called."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "mk" / "apt-install.sh"


def bare_path(tmp_path: Path, *, uid: int, sudo: str | None) -> Path:
    """bash and env, plus `id`, `apt-get` and (maybe) `sudo` stand-ins."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "env"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    log = tmp_path / "calls"
    scripts = {"id": f'[ "$1" = -u ] && echo {uid}', "apt-get": f'echo "apt-get $*" >> {log}'}
    if sudo == "allowed":
        scripts["sudo"] = (
            f'echo "sudo $*" >> {log}; [ "$1" = -n ] && shift; [ "$1" = true ] && exit 0; exec "$@"'
        )
    elif sudo == "refused":
        scripts["sudo"] = 'echo "sudo: a password is required" >&2; exit 1'
    for name, body in scripts.items():
        (bin_dir / name).write_text(f"#!{shutil.which('bash')}\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return bin_dir


def run(tmp_path: Path, bin_dir: Path, *packages: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(bin_dir / "bash"), str(SCRIPT), *packages],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )


def calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "calls"
    return log.read_text().splitlines() if log.exists() else []


def test_root_runs_apt_get_itself(tmp_path):
    done = run(tmp_path, bare_path(tmp_path, uid=0, sudo=None), "haproxy", "maven")
    assert done.returncode == 0, done.stderr
    assert calls(tmp_path) == [
        "apt-get update -qq",
        "apt-get install -y -qq --no-install-recommends haproxy maven",
    ]


def test_a_user_with_passwordless_sudo_goes_through_sudo_n(tmp_path):
    done = run(tmp_path, bare_path(tmp_path, uid=1000, sudo="allowed"), "wrk")
    assert done.returncode == 0, done.stderr
    assert calls(tmp_path) == [
        "sudo -n true",
        "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get update -qq",
        "apt-get update -qq",
        "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
        "--no-install-recommends wrk",
        "apt-get install -y -qq --no-install-recommends wrk",
    ]


def test_without_root_or_sudo_it_says_what_to_install(tmp_path):
    for sudo in ("refused", None):
        case = tmp_path / str(sudo)
        case.mkdir()
        done = run(case, bare_path(case, uid=1000, sudo=sudo), "chromium", "chromium-driver")
        assert done.returncode == 1
        wanted = (
            "sudo apt-get update && sudo apt-get install -y --no-install-recommends "
            "chromium chromium-driver"
        )
        assert wanted in done.stderr, done.stderr
        assert not [c for c in calls(case) if c.startswith("apt-get")]


def test_without_apt_it_names_the_packages(tmp_path):
    bin_dir = bare_path(tmp_path, uid=0, sudo=None)
    os.unlink(bin_dir / "apt-get")
    done = run(tmp_path, bin_dir, "stress-ng")
    assert done.returncode == 1 and "stress-ng" in done.stderr and "no apt-get" in done.stderr
