"""Where images and the history live: bytes in a blob store, records in a
metadata store (SQLite by default), behind small protocols."""

from codex_image_server.store.blobs import BlobStore, DirectoryBlobs
from codex_image_server.store.metadata import MetadataStore
from codex_image_server.store.output_store import INDEX_FILE, OutputStore, is_valid_id, new_id
from codex_image_server.store.records import STATUSES, Page, Query, RequestRecord, StoredImage
from codex_image_server.store.sqlite import SqliteMetadata

__all__ = [
    "BlobStore",
    "DirectoryBlobs",
    "MetadataStore",
    "INDEX_FILE",
    "OutputStore",
    "is_valid_id",
    "new_id",
    "STATUSES",
    "Page",
    "Query",
    "RequestRecord",
    "StoredImage",
    "SqliteMetadata",
]
