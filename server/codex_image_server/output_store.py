"""The output store: finished images and their metadata records on disk.

Layout: `<dir>/<id>.<ext>` beside `<dir>/<id>.json`. Both are written
atomically (temp file, fsync, rename, fsync of the directory), image first:
a metadata record exists only for a complete image, so a crash never leaves
a half-written file that `get` would serve. Ids are opaque and checked
against one pattern before any path is built, so no id can name a path
outside the store.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import secrets
from pathlib import Path

from .errors import not_found
from .imaging import EXTENSION_BY_MIME

_ID = re.compile(r"^img_[0-9a-f]{32}$")
_TMP_PREFIX = ".tmp-"


@dataclasses.dataclass(frozen=True)
class StoredImage:
    """The metadata record kept with every image; survives restarts."""
    id: str
    request_id: str
    index: int
    label: str
    mime_type: str
    width: int
    height: int
    byte_size: int
    sha256: str
    revised_prompt: str
    thread_id: str
    prompt: str
    requested_size: str
    resolved_size: str
    aspect: str
    quality: str
    output_format: str
    duration_ms: int
    created_unix_ms: int
    # Added with exact delivered sizes (issue 8); defaults keep older records readable.
    target_size: str = ""
    aspect_ratio: str = ""
    aspect_source: str = ""
    fit: str = ""
    native_width: int = 0
    native_height: int = 0
    resized: bool = False
    enlarged: bool = False
    references: tuple = ()  # ReferenceUse records as dicts
    # Added with transparent backgrounds (issue 11); defaults likewise.
    background: str = "auto"
    alpha_source: str = ""               # transparency.IMAGE_MODEL | KEYED_MATTE
    transparency: dict | None = None     # matte.Figures as a dict
    usage: dict | None = None            # codex's turn.completed usage

    @property
    def file_name(self) -> str:
        return f"{self.id}.{EXTENSION_BY_MIME[self.mime_type]}"


def is_valid_id(image_id: str) -> bool:
    return bool(_ID.match(image_id))


def new_id() -> str:
    return "img_" + secrets.token_hex(16)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(target: Path, data: bytes) -> None:
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


class OutputStore:
    def __init__(self, directory: Path):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        # Temp files are only ever left by a crash mid-write.
        for leftover in self.dir.glob(_TMP_PREFIX + "*"):
            leftover.unlink(missing_ok=True)

    def save(self, data: bytes, **meta) -> StoredImage:
        image_id = new_id()
        record = StoredImage(id=image_id, byte_size=len(data), sha256=hashlib.sha256(data).hexdigest(), **meta)
        _write_atomic(self.dir / record.file_name, data)
        _write_atomic(self.dir / f"{image_id}.json", json.dumps(dataclasses.asdict(record)).encode())
        _fsync_dir(self.dir)
        return record

    def get(self, image_id: str) -> StoredImage:
        if not is_valid_id(image_id):
            raise not_found(f"image {image_id[:80]!r}")
        try:
            raw = json.loads((self.dir / f"{image_id}.json").read_text())
            record = StoredImage(**raw)
        except (OSError, ValueError, TypeError):
            raise not_found(f"image {image_id!r}") from None
        if not self.path(record).is_file():
            raise not_found(f"file of image {image_id!r}")
        return record

    def path(self, record: StoredImage) -> Path:
        return self.dir / record.file_name

    def file_path(self, image_id: str, mime_type: str) -> Path:
        """Where the bytes of a record the caller already has (as an Image) lie."""
        if not is_valid_id(image_id) or mime_type not in EXTENSION_BY_MIME:
            raise not_found(f"file of image {image_id[:80]!r}")
        return self.dir / f"{image_id}.{EXTENSION_BY_MIME[mime_type]}"
