"""Working directories of requests: where the caller's references and each
candidate's codex run live while a request runs.

Each directory's name ends with its owner (server pid and start time), set
atomically as it is created, so a server starting after a hard death (SIGKILL,
OOM) can remove what no live server owns, the caller's images included,
without touching a live neighbour's.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from codex_image_server.engine.process_group import process_start_time

_MARK = ".owner-"


def _owner_tag() -> str:
    pid = os.getpid()
    return f"{_MARK}{pid}-{process_start_time(pid)}"


def new_path(work_root: Path, request_id: str) -> Path:
    """A fresh name, chosen before anything touches the disk: whoever removes
    the directory knows it even if the creating call was cancelled midway."""
    return work_root / f"{request_id}-{secrets.token_hex(6)}{_owner_tag()}"


def create(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.mkdir(mode=0o700)
    return path


def _owner_alive(name: str) -> bool:
    tag = name.rpartition(_MARK)[2]
    pid, _, start = tag.partition("-")
    if not (pid.isdigit() and start.isdigit()):
        return False
    return process_start_time(int(pid)) == int(start)


def sweep(work_root: Path) -> list[str]:
    """Remove the working directories whose owner is gone; return their names."""
    removed: list[str] = []
    try:
        entries = list(work_root.iterdir())
    except FileNotFoundError:
        return removed
    for path in entries:
        if path.is_dir() and not _owner_alive(path.name):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed
