"""Detached generations (long-running operations) in the metadata store: the
durable queue every replica takes work from, and the record callers read.

One row per operation, keyed by its request id. A server takes a queued row
(or a running one whose lease ran out: its server died) by setting itself as
owner with a lease it renews while the run lasts; PostgreSQL's claim skips
rows another replica is claiming (FOR UPDATE SKIP LOCKED), SQLite's one
connection makes the claim one step anyway. A run is started at most twice:
a row found orphaned after its second start fails (retryable).

The SQL is shared by SQLite and PostgreSQL (`?` placeholders, as in
sqlite.py); the schema is each store's own.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING

# queued -> running -> succeeded | failed | cancelled (queued may go straight to cancelled).
STATES = ("queued", "running", "succeeded", "failed", "cancelled")
DONE = ("succeeded", "failed", "cancelled")
MAX_ATTEMPTS = 2  # the first run and one retry after its server died

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS operations (
  request_id TEXT PRIMARY KEY,
  key_name TEXT NOT NULL DEFAULT '',
  surface TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL,
  request BLOB NOT NULL,
  webhook_url TEXT NOT NULL DEFAULT '',
  created_unix_ms INTEGER NOT NULL,
  started_unix_ms INTEGER NOT NULL DEFAULT 0,
  ended_unix_ms INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  owner TEXT NOT NULL DEFAULT '',
  lease_until_unix_ms INTEGER NOT NULL DEFAULT 0,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  progress TEXT NOT NULL DEFAULT '',
  result BLOB,
  error TEXT NOT NULL DEFAULT '',
  webhook TEXT NOT NULL DEFAULT '',
  not_before_unix_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS operations_by_state ON operations (state, created_unix_ms);
CREATE INDEX IF NOT EXISTS operations_by_time ON operations (created_unix_ms, request_id);
"""
# Added later (SQLite adds it to an older file, PostgreSQL in a migration):
# a webhook still owed, and by when its deliverer writes again (else another takes it over).
WEBHOOK_DUE_COLUMN = (
    "ALTER TABLE operations ADD COLUMN webhook_due_unix_ms BIGINT NOT NULL DEFAULT 0"
)
WEBHOOK_DUE_INDEX = (
    "CREATE INDEX IF NOT EXISTS operations_webhooks_due ON operations (webhook_due_unix_ms) "
    "WHERE webhook_due_unix_ms > 0"
)

# The same table in PostgreSQL (a migration of postgres.py).
POSTGRES_MIGRATION = """
CREATE TABLE operations (
  request_id TEXT PRIMARY KEY,
  key_name TEXT NOT NULL DEFAULT '',
  surface TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL,
  request BYTEA NOT NULL,
  webhook_url TEXT NOT NULL DEFAULT '',
  created_unix_ms BIGINT NOT NULL,
  started_unix_ms BIGINT NOT NULL DEFAULT 0,
  ended_unix_ms BIGINT NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  owner TEXT NOT NULL DEFAULT '',
  lease_until_unix_ms BIGINT NOT NULL DEFAULT 0,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  progress TEXT NOT NULL DEFAULT '',
  result BYTEA,
  error TEXT NOT NULL DEFAULT '',
  webhook TEXT NOT NULL DEFAULT '',
  not_before_unix_ms BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX operations_by_state ON operations (state, created_unix_ms);
CREATE INDEX operations_by_time ON operations (created_unix_ms, request_id);
"""


@dataclasses.dataclass(frozen=True)
class OperationRecord:
    request_id: str
    key_name: str
    surface: str
    state: str
    request: bytes  # the GenerateRequest as submitted (protobuf bytes)
    webhook_url: str
    created_unix_ms: int
    started_unix_ms: int = 0
    ended_unix_ms: int = 0
    attempts: int = 0
    owner: str = ""
    lease_until_unix_ms: int = 0
    cancel_requested: int = 0
    progress: str = ""  # JSON: the candidates' progress
    result: bytes | None = None  # the GenerationResult (protobuf bytes) once succeeded
    error: str = ""  # JSON: {kind, reason, message, retry_after_s} once failed or cancelled
    webhook: str = ""  # JSON: the webhook's delivery
    not_before_unix_ms: int = 0  # a queued one put back (its key at its limit) waits until then
    webhook_due_unix_ms: int = 0  # its webhook is owed; past this time any server may deliver it

    @property
    def done(self) -> bool:
        return self.state in DONE

    def error_fields(self) -> dict | None:
        return json.loads(self.error) if self.error else None


FIELDS = [f.name for f in dataclasses.fields(OperationRecord)]
_COLUMNS = ", ".join(FIELDS)
# Set where an operation ends: a webhook is owed when it has one.
_OWED = "webhook_due_unix_ms = CASE WHEN webhook_url = '' THEN 0 ELSE ? END"


def _record(row) -> OperationRecord:
    values = list(row)
    for name in ("request", "result"):
        i = FIELDS.index(name)
        values[i] = bytes(values[i]) if values[i] is not None else None
    return OperationRecord(*values)


class OperationQueries:
    """Mixed into a store that gives `_run(sql, args)`; `_CLAIM_LOCK` is the
    store's row-lock clause for the claim ("" for SQLite)."""

    _CLAIM_LOCK = ""

    if TYPE_CHECKING:  # given by the store this is mixed into

        def _run(self, sql: str, args=()) -> list: ...

    def add_operation(self, record: OperationRecord) -> OperationRecord | None:
        """Inserts it; None when the request id was taken (the caller then reads the existing
        one)."""
        values = dataclasses.asdict(record)
        rows = self._run(
            f"INSERT INTO operations ({_COLUMNS}) VALUES ({', '.join('?' for _ in FIELDS)}) "
            "ON CONFLICT (request_id) DO NOTHING RETURNING request_id",
            [values[n] for n in FIELDS],
        )
        return record if rows else None

    def get_operation(self, request_id: str, owner: str | None = None) -> OperationRecord | None:
        where, args = "request_id = ?", [request_id]
        if owner is not None:
            where, args = where + " AND key_name = ?", [*args, owner]
        rows = self._run(f"SELECT {_COLUMNS} FROM operations WHERE {where}", args)
        return _record(rows[0]) if rows else None

    def list_operations(
        self, owner: str | None, states: tuple[str, ...], after, limit: int
    ) -> list[OperationRecord]:
        """Newest first; `after` a paging.Cursor (created time, request id)."""
        where, args = [], []
        if owner is not None:
            where.append("key_name = ?")
            args.append(owner)
        if states:
            where.append(f"state IN ({', '.join('?' for _ in states)})")
            args += list(states)
        if after is not None:
            where.append("(created_unix_ms, request_id) < (?, ?)")
            args += [after.created_unix_ms, after.id]
        rows = self._run(
            f"SELECT {_COLUMNS} FROM operations"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY created_unix_ms DESC, request_id DESC LIMIT ?",
            args + [limit],
        )
        return [_record(r) for r in rows]

    def queue_position(self, record: OperationRecord) -> int:
        """Queued operations ahead of this one."""
        return int(
            self._run(
                "SELECT count(*) FROM operations WHERE state = 'queued' AND "
                "(created_unix_ms, request_id) < (?, ?)",
                (record.created_unix_ms, record.request_id),
            )[0][0]
        )

    def operation_counts(self) -> dict[str, int]:
        rows = self._run(
            "SELECT state, count(*) FROM operations WHERE state IN ('queued', 'running') GROUP "
            "BY state"
        )
        return {state: int(n) for state, n in rows}

    def fail_orphans(
        self, now_unix_ms: int, error: str, webhook_due_unix_ms: int
    ) -> list[OperationRecord]:
        """Operations whose server died during their last allowed run: failed."""
        rows = self._run(
            f"UPDATE operations SET state = 'failed', error = ?, ended_unix_ms = ?, owner = '', "
            f"{_OWED} WHERE state = 'running' AND lease_until_unix_ms < ? AND attempts >= ? "
            f"RETURNING {_COLUMNS}",
            (error, now_unix_ms, webhook_due_unix_ms, now_unix_ms, MAX_ATTEMPTS),
        )
        return [_record(r) for r in rows]

    def claim_operation(
        self, owner: str, now_unix_ms: int, lease_ms: int
    ) -> OperationRecord | None:
        """The oldest queued (or orphaned, once) operation, now this owner's."""
        rows = self._run(
            f"UPDATE operations SET state = 'running', owner = ?, lease_until_unix_ms = ?, "
            f"attempts = attempts + 1, started_unix_ms = ?, progress = '' "
            f"WHERE request_id = (SELECT request_id FROM operations WHERE (state = 'queued' "
            "AND not_before_unix_ms <= ?) OR (state = 'running' AND lease_until_unix_ms < ? AND "
            "attempts < ?) "
            f"ORDER BY created_unix_ms, request_id LIMIT 1 {self._CLAIM_LOCK}) RETURNING "
            f"{_COLUMNS}",
            (owner, now_unix_ms + lease_ms, now_unix_ms, now_unix_ms, now_unix_ms, MAX_ATTEMPTS),
        )
        return _record(rows[0]) if rows else None

    def renew_operations(self, owner: str, request_ids: list[str], until_unix_ms: int) -> list[str]:
        """Extends this owner's leases; returns the ids a caller asked to cancel."""
        if not request_ids:
            return []
        marks = ", ".join("?" for _ in request_ids)
        rows = self._run(
            f"UPDATE operations SET lease_until_unix_ms = ? WHERE owner = ? AND state = 'running' "
            f"AND request_id IN ({marks}) RETURNING request_id, cancel_requested",
            [until_unix_ms, owner, *request_ids],
        )
        return [r[0] for r in rows if r[1]]

    def set_operation_progress(self, request_id: str, owner: str, progress: str) -> None:
        self._run(
            "UPDATE operations SET progress = ? WHERE request_id = ? AND owner = ? AND state = "
            "'running' "
            "RETURNING request_id",
            (progress, request_id, owner),
        )

    def finish_operation(
        self,
        request_id: str,
        owner: str,
        state: str,
        now_unix_ms: int,
        *,
        result: bytes | None = None,
        error: str = "",
        webhook_due_unix_ms: int = 0,
        progress: str | None = None,
    ) -> OperationRecord | None:
        """Only while this owner still holds it (a server that lost its lease must not
        overwrite). `progress`, when given, is the candidates' last word: the
        progress writes made while it ran may land in any order."""
        rows = self._run(
            f"UPDATE operations SET state = ?, result = ?, error = ?, ended_unix_ms = ?, "
            f"progress = COALESCE(?, progress), "
            f"lease_until_unix_ms = 0, {_OWED} WHERE request_id = ? AND owner = ? "
            f"AND state = 'running' RETURNING {_COLUMNS}",
            (state, result, error, now_unix_ms, progress, webhook_due_unix_ms, request_id, owner),
        )
        return _record(rows[0]) if rows else None

    def requeue_operation(self, request_id: str, owner: str, not_before_unix_ms: int) -> bool:
        """Back in the queue, the attempt not counted: it could not start yet
        (its key at its concurrency limit, the slots' queue full)."""
        return bool(
            self._run(
                "UPDATE operations SET state = 'queued', owner = '', lease_until_unix_ms = 0, "
                "attempts = attempts - 1, started_unix_ms = 0, not_before_unix_ms = ? "
                "WHERE request_id = ? AND owner = ? AND state = 'running' RETURNING request_id",
                (not_before_unix_ms, request_id, owner),
            )
        )

    def cancel_operation(
        self, request_id: str, now_unix_ms: int, error: str, webhook_due_unix_ms: int = 0
    ) -> OperationRecord | None:
        """A queued one ends cancelled at once; a running one is marked for
        its owner to stop (it records the end). None when already done."""
        rows = self._run(
            f"UPDATE operations SET state = 'cancelled', error = ?, ended_unix_ms = ?, {_OWED} "
            f"WHERE request_id = ? AND state = 'queued' RETURNING {_COLUMNS}",
            (error, now_unix_ms, webhook_due_unix_ms, request_id),
        )
        if rows:
            return _record(rows[0])
        rows = self._run(
            "UPDATE operations SET cancel_requested = 1 WHERE request_id = ? AND state = "
            "'running' "
            f"RETURNING {_COLUMNS}",
            (request_id,),
        )
        return _record(rows[0]) if rows else None

    def delete_operation(self, request_id: str) -> bool:
        """Only a finished one."""
        return bool(
            self._run(
                "DELETE FROM operations WHERE request_id = ? AND state IN "
                "('succeeded', 'failed', 'cancelled') RETURNING request_id",
                (request_id,),
            )
        )

    def set_operation_webhook(self, request_id: str, webhook: str, due_unix_ms: int) -> None:
        """An attempt's outcome; `due_unix_ms` 0 once nothing more is owed."""
        self._run(
            "UPDATE operations SET webhook = ?, webhook_due_unix_ms = ? WHERE request_id = ? "
            "RETURNING request_id",
            (webhook, due_unix_ms, request_id),
        )

    def claim_webhook(self, now_unix_ms: int, due_unix_ms: int) -> OperationRecord | None:
        """A webhook owed whose deliverer did not write again in time (its
        server stopped or died): now this caller's to deliver until `due_unix_ms`."""
        rows = self._run(
            "UPDATE operations SET webhook_due_unix_ms = ? WHERE request_id = "
            "(SELECT request_id FROM operations "
            "WHERE webhook_due_unix_ms > 0 AND webhook_due_unix_ms < ? "
            "ORDER BY webhook_due_unix_ms LIMIT 1 "
            f"{self._CLAIM_LOCK}) RETURNING {_COLUMNS}",
            (due_unix_ms, now_unix_ms),
        )
        return _record(rows[0]) if rows else None

    def release_operations(self, owner: str | None = None) -> int:
        """Leases ended now: of one owner (its shutdown), or of all (SQLite's
        one process at start: whatever ran before it ran in a dead server)."""
        where, args = "state = 'running'", []
        if owner is not None:
            where, args = where + " AND owner = ?", [owner]
        return len(
            self._run(
                f"UPDATE operations SET lease_until_unix_ms = 0 WHERE {where} RETURNING request_id",
                args,
            )
        )

    def delete_finished_operations_before(self, cutoff_unix_ms: int) -> int:
        """Retention: operations that ended before the cutoff go (their images, made earlier,
        went)."""
        return len(
            self._run(
                "DELETE FROM operations WHERE ended_unix_ms < ? AND state IN "
                "('succeeded', 'failed', 'cancelled') RETURNING request_id",
                (cutoff_unix_ms,),
            )
        )
