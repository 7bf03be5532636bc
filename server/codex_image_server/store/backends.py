"""Which stores a server uses: SQLite and files on disk by default (one
process, nothing to run), PostgreSQL and S3-compatible storage when given
(several replicas sharing one history and one set of images)."""

from __future__ import annotations

from codex_image_server.store.output_store import INDEX_FILE, OutputStore


def open_store(settings) -> OutputStore:
    metadata = blobs = None
    if settings.database_url:
        from codex_image_server.store.postgres import PostgresMetadata, replica_name  # noqa: PLC0415 - psycopg only when used

        metadata = PostgresMetadata(
            settings.database_url,
            replica=replica_name(settings.state_dir),
            lease_s=settings.lease_ms / 1000,
            query_budget_s=settings.query_budget_ms / 1000,
        )
    if settings.object_store:
        from codex_image_server.store.s3 import S3Blobs  # noqa: PLC0415 - boto3 only when used

        blobs = S3Blobs(
            settings.object_store,
            settings.state_dir / "object-cache",
            endpoint=settings.s3_endpoint,
            region=settings.s3_region,
        )
    return OutputStore(
        settings.output_dir,
        settings.state_dir / INDEX_FILE,
        blobs=blobs,
        metadata=metadata,
        query_budget_s=settings.query_budget_ms / 1000,
    )
