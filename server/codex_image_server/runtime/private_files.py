"""Everything the server writes is its user's alone: the index holds every
prompt, the images are the callers' work. The umask is set once at start
(so every file made afterwards, SQLite's -wal and -shm included, is 0600 and
every directory 0700), and what an earlier run left more open is closed."""

from __future__ import annotations

import os
from pathlib import Path

UMASK = 0o077
DIR_MODE = 0o700
FILE_MODE = 0o600
# The index and its companions: SQLite gives -wal and -shm the main file's mode.
_INDEX_SUFFIXES = ("", "-wal", "-shm", "-journal")


def _tighten(path: Path, mode: int) -> None:
    try:
        if path.stat().st_mode & 0o777 & ~mode:
            os.chmod(path, mode)
    except FileNotFoundError:
        pass
    except PermissionError:
        pass  # not ours (a shared mount): left as it is


def keep_private(state_dir: Path, output_dir: Path, index_file: str) -> None:
    """Umask 077, then the state and output directories 0700 and the index
    files 0600 (their parents are the operator's and are left alone)."""
    os.umask(UMASK)
    state_dir.mkdir(parents=True, exist_ok=True)
    for directory in (state_dir, output_dir):  # the output directory is made (0700) when first used
        _tighten(directory, DIR_MODE)
    for suffix in _INDEX_SUFFIXES:
        _tighten(state_dir / f"{index_file}{suffix}", FILE_MODE)
