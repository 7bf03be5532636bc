"""Where images and the history live: bytes in a blob store, records in a
metadata store (SQLite by default), behind small protocols."""
from .blobs import BlobStore, DirectoryBlobs
from .metadata import MetadataStore
from .output_store import INDEX_FILE, OutputStore, is_valid_id, new_id
from .records import STATUSES, Page, Query, RequestRecord, StoredImage
from .sqlite import SqliteMetadata

__all__ = ["BlobStore", "DirectoryBlobs", "MetadataStore", "INDEX_FILE", "OutputStore", "is_valid_id",
           "new_id", "STATUSES", "Page", "Query", "RequestRecord", "StoredImage", "SqliteMetadata"]
