"""Finding the real codex, and finding its processes under a server by /proc.

Kept apart from the server's own bookkeeping on purpose: the tests prove
what the kernel says, not what the server believes.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROJECT_CODEX = REPO / ".tools" / "codex" / "node_modules" / ".bin" / "codex"
NATIVE_GLOB = "@openai/codex-linux-*/vendor/*/bin/codex"


def selected_wrapper() -> Path:
    """The npm wrapper under test: the pinned one, or the one `make test-codex`
    names in CODEX_IMAGE_SERVER_PROJECT_CODEX (.tools/codex-<version>/...)."""
    return Path(os.environ.get("CODEX_IMAGE_SERVER_PROJECT_CODEX") or PROJECT_CODEX)


def _package_json(wrapper: Path) -> Path:
    return wrapper.parent.parent / "@openai" / "codex" / "package.json"


def package_version(wrapper: Path) -> str:
    """The npm package's version ("0.171.0"): what `codex --version` must say."""
    return json.loads(_package_json(wrapper).read_text())["version"]


def codex_or_skip() -> Path:
    """The codex under test, or a loud skip when its npm package is not installed.

    This is the only reason these tests may skip: a missing codex is a setup
    step (`make codex`), never a silent pass.
    """
    path = selected_wrapper()
    if not path.exists() or not _package_json(path).exists():
        pytest.skip(
            f"REAL CODEX NOT INSTALLED: {path} is missing, so the end-to-end tests against "
            "the real binary did not run. Run `make codex` (or `make codex-matrix`)."
        )
    return path


def native_codex(wrapper: Path) -> Path:
    """The native binary the npm package ships beside the wrapper (run in place)."""
    found = sorted((wrapper.parent.parent).glob(NATIVE_GLOB))
    if not found:
        pytest.skip(
            f"REAL CODEX NOT INSTALLED: no native binary under {wrapper.parent.parent}; run "
            "`make codex`."
        )
    return found[0]


def _stat(pid: int) -> list[str] | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes().decode("utf-8", "replace")
    except OSError:
        return None
    return data[data.rindex(")") + 2 :].split()


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline")
            .read_bytes()
            .replace(b"\0", b" ")
            .decode("utf-8", "replace")
        )
    except OSError:
        return ""


def descendants(root: int) -> list[int]:
    """Every live process whose parent chain leads to `root`."""
    parents = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat(int(name))
            if fields:
                parents[int(name)] = int(fields[1])
    found, frontier = [], {root}
    while frontier:
        children = [pid for pid, ppid in parents.items() if ppid in frontier and pid not in found]
        found.extend(children)
        frontier = set(children)
    return found


def codex_processes(server_pid: int) -> dict[int, int]:
    """{pid: pgid} of the codex processes (node wrapper and native binary) under the server."""
    out = {}
    for pid in descendants(server_pid):
        fields = _stat(pid)
        if fields and fields[0] != "Z" and _is_codex_exec(pid):
            out[pid] = int(fields[2])
    return out


def alive(pid: int) -> bool:
    """Exists and is not a zombie."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def group_members(pgid: int) -> list[int]:
    members = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat(int(name))
            if fields and int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(name))
    return members


def processes_with_codex_home(home: Path) -> dict[int, int]:
    """{pid: pgid} of every live process whose environment has CODEX_HOME=home.

    Catches a native codex orphaned by a killed wrapper too (it is no longer
    under the server, but keeps its environment).
    """
    needle = f"CODEX_HOME={home}".encode()
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            env = Path(f"/proc/{name}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        fields = _stat(int(name))
        if needle in env and fields and fields[0] != "Z" and _is_codex_exec(int(name)):
            out[int(name)] = int(fields[2])
    return out


def _is_codex_exec(pid: int) -> bool:
    # Only `codex exec` runs: not the server (its cmdline says codex_image_server)
    # nor its short readiness probes (`codex --version`, `codex login status`).
    argv = _cmdline(pid).split()
    # The wrapper shows as `node .../codex.js exec` once its symlink is resolved.
    return any(Path(a).name in ("codex", "codex.js") for a in argv[:2]) and "exec" in argv[1:3]


def kill_groups(pids_to_pgids: dict[int, int]) -> None:
    """Test cleanup only: SIGKILL these processes and their whole groups."""
    own_group = os.getpgrp()
    for pid, pgid in pids_to_pgids.items():
        targets = [(pid, os.kill)] + ([(pgid, os.killpg)] if pgid != own_group else [])
        for target, kill in targets:
            try:
                kill(target, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
