"""Image bytes. `BlobStore` is what the rest needs; `DirectoryBlobs` keeps
them as files, written atomically (temp file, fsync, rename, fsync of the
directory), so a crash never leaves a half-written file that could be served.
An S3-compatible store is the next implementation of the same protocol."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

_TMP_PREFIX = ".tmp-"


class BlobStore(Protocol):
    def put(self, name: str, data: bytes) -> None: ...
    def path(self, name: str, sha256: str = "") -> Path:
        """Where the bytes lie; `sha256` (the record's), for a store that checks a copy."""

    def exists(self, name: str) -> bool: ...
    def delete(self, name: str) -> bool: ...
    def names_before(self, cutoff_unix_s: float) -> Iterator[str]:
        """Names of the objects last written before `cutoff_unix_s` (for the
        retention sweep of objects no record names)."""


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(target: Path, data: bytes) -> None:
    tmp = target.with_name(f"{_TMP_PREFIX}{secrets.token_hex(6)}-{target.name}")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def local_names_before(directory: Path, cutoff_unix_s: float) -> Iterator[str]:
    """Files in `directory` (not its temp files) last written before the cutoff."""
    with os.scandir(directory) as entries:
        for entry in entries:
            try:
                if (
                    entry.is_file(follow_symlinks=False)
                    and not entry.name.startswith(_TMP_PREFIX)
                    and entry.stat().st_mtime < cutoff_unix_s
                ):
                    yield entry.name
            except FileNotFoundError:
                continue  # deleted meanwhile


class DirectoryBlobs:
    """`<dir>/<name>`: names are built by the store from checked ids only."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        # Temp files are only ever left by a crash mid-write.
        for leftover in self.dir.glob(_TMP_PREFIX + "*"):
            leftover.unlink(missing_ok=True)

    def put(self, name: str, data: bytes) -> None:
        write_atomic(self.dir / name, data)
        fsync_dir(self.dir)

    def path(self, name: str, sha256: str = "") -> Path:
        return self.dir / name  # the files are the store: no other copy to check against

    def exists(self, name: str) -> bool:
        return (self.dir / name).is_file()

    def names_before(self, cutoff_unix_s: float) -> Iterator[str]:
        for name in local_names_before(self.dir, cutoff_unix_s):
            # Beside an old-layout record the migration could not read: kept for a person to
            # look at.
            if not (self.dir / f"{Path(name).stem}.json").exists():
                yield name

    def delete(self, name: str) -> bool:
        try:
            (self.dir / name).unlink()
        except FileNotFoundError:
            return False
        return True
