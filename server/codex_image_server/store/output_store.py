"""The output store: image bytes in a `BlobStore`, their records in a
`MetadataStore`. Ids are opaque and checked against one pattern before any
name is built, so no id can name a path outside the store. Bytes are written
before the record: a record exists only for a complete image."""

from __future__ import annotations

import hashlib
import re
import secrets
from pathlib import Path

from codex_image_server.errors import not_found
from codex_image_server.request.imaging import EXTENSION_BY_MIME
from codex_image_server.store import migrate, paging
from codex_image_server.store.blobs import BlobStore, DirectoryBlobs
from codex_image_server.store.metadata import MetadataStore
from codex_image_server.store.records import Page, Query, StoredImage
from codex_image_server.store.sqlite import SqliteMetadata

_ID = re.compile(r"^img_[0-9a-f]{32}$")
INDEX_FILE = "index.sqlite3"


def is_valid_id(image_id: str) -> bool:
    return bool(_ID.match(image_id))


def new_id() -> str:
    return "img_" + secrets.token_hex(16)


class OutputStore:
    def __init__(
        self,
        directory: Path,
        index_path: Path,
        *,
        blobs: BlobStore | None = None,
        metadata: MetadataStore | None = None,
        query_budget_s: float = 1.0,
    ):
        self.dir = directory
        self.blobs = blobs or DirectoryBlobs(directory)
        self.metadata = metadata or SqliteMetadata(index_path, query_budget_s)
        migrate.import_json_records(directory, self.metadata, is_valid_id)

    def save(self, data: bytes, **meta) -> StoredImage:
        record = StoredImage(
            id=new_id(), byte_size=len(data), sha256=hashlib.sha256(data).hexdigest(), **meta
        )
        self.blobs.put(record.file_name, data)
        self.metadata.add_image(record)
        return record

    def get(self, image_id: str, owner: str | None = None) -> StoredImage:
        record = self.metadata.get_image(image_id, owner) if is_valid_id(image_id) else None
        if record is None:
            raise not_found(f"image {image_id[:80]!r}")
        if not self.blobs.exists(record.file_name):
            raise not_found(f"file of image {image_id!r}")
        return record

    def path(self, record: StoredImage) -> Path:
        return self.blobs.path(record.file_name, record.sha256)

    def file_path(self, image_id: str, mime_type: str) -> Path:
        """Where the bytes of a record the caller already has (as an Image) lie."""
        if not is_valid_id(image_id) or mime_type not in EXTENSION_BY_MIME:
            raise not_found(f"file of image {image_id[:80]!r}")
        return self.blobs.path(f"{image_id}.{EXTENSION_BY_MIME[mime_type]}")

    def delete(self, image_id: str, owner: str | None = None) -> StoredImage:
        """Record first, so the file route answers 404 at once; then the bytes."""
        record = self.metadata.delete_image(image_id, owner) if is_valid_id(image_id) else None
        if record is None:
            raise not_found(f"image {image_id[:80]!r}")
        self.blobs.delete(record.file_name)
        return record

    def list(self, query: Query) -> Page:
        return paging.page(
            "images",
            query,
            self.metadata.list_images,
            lambda r: paging.Cursor(r.created_unix_ms, r.id),
            self.metadata.page_secret(),
        )

    def totals(self) -> tuple[int, int]:
        """(images, bytes) stored."""
        return self.metadata.totals()

    def close(self) -> None:
        self.metadata.close()
