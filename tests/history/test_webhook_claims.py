"""Webhooks owed, as the store keeps them (both backends, conftest): an
operation's end with a webhook marks it due; nobody takes it over while its
sender keeps writing in time; once that time passed, one server (and only
one) takes it; delivered or given up, nothing is owed."""

from __future__ import annotations

import pytest
from codex_image_server.store import SqliteMetadata
from codex_image_server.store.operations import OperationRecord

from tests.support import databases

NOW = 1_000_000


@pytest.fixture
def meta(tmp_path, backend, request):
    if backend == "postgres":
        from codex_image_server.store.postgres import PostgresMetadata  # noqa: PLC0415 - psycopg

        m = PostgresMetadata(
            databases.new_database(request.getfixturevalue("postgres")), replica="test"
        )
    else:
        m = SqliteMetadata(tmp_path / "index.sqlite3")
    yield m
    m.close()


def ended(meta, request_id: str, webhook_url: str) -> OperationRecord:
    meta.add_operation(
        OperationRecord(
            request_id=request_id,
            key_name="",
            surface="grpc",
            state="queued",
            request=b"",
            webhook_url=webhook_url,
            created_unix_ms=NOW,
        )
    )
    assert meta.claim_operation("server-a", NOW, 60_000).request_id == request_id
    return meta.finish_operation(
        request_id, "server-a", "succeeded", NOW + 10, result=b"", webhook_due_unix_ms=NOW + 12_000
    )


def test_an_owed_webhook_is_taken_over_once_its_sender_is_late(meta):
    assert ended(meta, "with-hook", "http://127.0.0.1:9/hook").webhook_due_unix_ms == NOW + 12_000
    assert ended(meta, "no-hook", "").webhook_due_unix_ms == 0, "nothing owed without a webhook"
    assert meta.claim_webhook(NOW + 11_000, NOW + 30_000) is None, "its sender still has time"
    taken = meta.claim_webhook(NOW + 13_000, NOW + 30_000)
    assert (
        taken is not None
        and taken.request_id == "with-hook"
        and taken.webhook_due_unix_ms == NOW + 30_000
    )
    assert meta.claim_webhook(NOW + 13_000, NOW + 30_000) is None, "taken once"
    meta.set_operation_webhook("with-hook", '{"status": "delivered", "attempts": 2}', 0)
    assert meta.claim_webhook(NOW + 10**9, NOW + 10**9) is None, "delivered: nothing owed"


def test_a_queued_operation_cancelled_owes_its_webhook_too(meta):
    meta.add_operation(
        OperationRecord(
            request_id="q",
            key_name="",
            surface="grpc",
            state="queued",
            request=b"",
            webhook_url="http://127.0.0.1:9/hook",
            created_unix_ms=NOW,
        )
    )
    cancelled = meta.cancel_operation("q", NOW + 5, '{"kind": "CANCELLED"}', NOW + 12_000)
    assert cancelled.state == "cancelled" and cancelled.webhook_due_unix_ms == NOW + 12_000
