"""The index of images and requests in PostgreSQL, for several replicas: the
same `MetadataStore` as `SqliteMetadata`, the same columns and queries (its
row helpers are shared), with PostgreSQL's placeholders and ILIKE.

A pool of a few connections, each checked before use: when PostgreSQL
restarts, the next call gets a fresh connection, with no replica restart.
While it is down, calls fail with UNAVAILABLE (DATABASE_UNAVAILABLE), never
with a stack trace. Migrations run at start under an advisory lock, so
replicas starting together apply each one once."""

from __future__ import annotations

import contextlib
import os
import socket
import time
import urllib.parse

import psycopg
import psycopg_pool

from codex_image_server.errors import Kind, ServiceError
from codex_image_server.store.operations import (
    POSTGRES_MIGRATION as _OPERATIONS,
    WEBHOOK_DUE_COLUMN,
    WEBHOOK_DUE_INDEX,
    OperationQueries,
)
from codex_image_server.store.pg_shared import (
    ACCOUNT_RUN_LOG_MIGRATION,
    PostgresAccounts,
    ReplicaLease,
    lease_lives,
)
from codex_image_server.store.records import Admission, KeyLoad, RequestRecord, SameId
from codex_image_server.store.sqlite import (
    _IMAGE_COLUMNS,
    _IMAGE_FIELDS,
    _REQUEST_FIELDS,
    IMAGES_OF_KEY_SINCE,
    SqlQueries,
    _image,
    _image_values as _sqlite_values,
    _like,
    _list_text,
    _request,
    _request_values,
    owned,
    too_slow,
)

# Append only: a replica applies the ones past the database's version.
MIGRATIONS = [
    """
    CREATE TABLE images (
      id TEXT PRIMARY KEY,
      request_seq BIGINT NOT NULL DEFAULT 0,
      request_id TEXT NOT NULL,
      idx INTEGER NOT NULL,
      label TEXT NOT NULL,
      mime_type TEXT NOT NULL,
      width INTEGER NOT NULL,
      height INTEGER NOT NULL,
      byte_size BIGINT NOT NULL,
      sha256 TEXT NOT NULL,
      revised_prompt TEXT NOT NULL,
      thread_id TEXT NOT NULL,
      prompt TEXT NOT NULL,
      requested_size TEXT NOT NULL,
      resolved_size TEXT NOT NULL,
      aspect TEXT NOT NULL,
      quality TEXT NOT NULL,
      output_format TEXT NOT NULL,
      duration_ms BIGINT NOT NULL,
      created_unix_ms BIGINT NOT NULL,
      target_size TEXT NOT NULL DEFAULT '',
      aspect_ratio TEXT NOT NULL DEFAULT '',
      aspect_source TEXT NOT NULL DEFAULT '',
      fit TEXT NOT NULL DEFAULT '',
      native_width INTEGER NOT NULL DEFAULT 0,
      native_height INTEGER NOT NULL DEFAULT 0,
      resized BOOLEAN NOT NULL DEFAULT false,
      enlarged BOOLEAN NOT NULL DEFAULT false,
      reference_uses TEXT NOT NULL DEFAULT '[]',
      key_name TEXT NOT NULL DEFAULT '',
      account TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX images_by_time ON images (created_unix_ms, id);
    CREATE INDEX images_by_request ON images (request_id);
    CREATE INDEX images_by_request_seq ON images (request_seq);
    CREATE TABLE requests (
      seq BIGSERIAL PRIMARY KEY,
      request_id TEXT NOT NULL,
      status TEXT NOT NULL,
      created_unix_ms BIGINT NOT NULL,
      key_name TEXT NOT NULL DEFAULT '',
      surface TEXT NOT NULL DEFAULT '',
      prompt TEXT NOT NULL DEFAULT '',
      count INTEGER NOT NULL DEFAULT 0,
      requested_size TEXT NOT NULL DEFAULT '',
      resolved_size TEXT NOT NULL DEFAULT '',
      aspect TEXT NOT NULL DEFAULT '',
      quality TEXT NOT NULL DEFAULT '',
      output_format TEXT NOT NULL DEFAULT '',
      reference_count INTEGER NOT NULL DEFAULT 0,
      ended_unix_ms BIGINT NOT NULL DEFAULT 0,
      error_reason TEXT NOT NULL DEFAULT '',
      error_message TEXT NOT NULL DEFAULT '',
      queue_wait_ms BIGINT NOT NULL DEFAULT 0,
      codex_ms BIGINT NOT NULL DEFAULT 0,
      duration_ms BIGINT NOT NULL DEFAULT 0,
      accounts TEXT NOT NULL DEFAULT '',
      image_ids TEXT NOT NULL DEFAULT '',
      image_count INTEGER NOT NULL DEFAULT 0,
      -- Which replica runs it: a restarting replica ends only its own.
      replica TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX requests_by_time ON requests (created_unix_ms, seq);
    CREATE INDEX requests_by_id ON requests (request_id, seq);
    CREATE INDEX requests_by_key ON requests (key_name, created_unix_ms);
    CREATE INDEX requests_running ON requests (replica) WHERE status = 'running';
    """,
    # Transparent backgrounds: the figures and usage as JSON text, '' for none, as in SQLite.
    """
    ALTER TABLE images ADD COLUMN background TEXT NOT NULL DEFAULT 'auto';
    ALTER TABLE images ADD COLUMN alpha_source TEXT NOT NULL DEFAULT '';
    ALTER TABLE images ADD COLUMN transparency TEXT NOT NULL DEFAULT '';
    ALTER TABLE images ADD COLUMN usage TEXT NOT NULL DEFAULT '';
    """,
    # Global limits (pg_shared.py): replicas' leases, runs on accounts, used-up accounts; a key's
    # running requests.
    """
    CREATE TABLE replicas (name TEXT PRIMARY KEY, alive_until TIMESTAMPTZ NOT NULL);
    CREATE TABLE account_runs (id BIGSERIAL PRIMARY KEY, account TEXT NOT NULL,
                               replica TEXT NOT NULL);
    CREATE INDEX account_runs_by_account ON account_runs (account);
    CREATE INDEX account_runs_by_replica ON account_runs (replica);
    CREATE TABLE accounts (name TEXT PRIMARY KEY,
                           exhausted_until_unix_ms BIGINT NOT NULL DEFAULT 0);
    CREATE INDEX requests_running_by_key ON requests (key_name) WHERE status = 'running';
    """,
    # Signed page tokens: the store's own secret, shared by its replicas; a
    # member key's images found by key, newest first.
    """
    CREATE TABLE secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE INDEX images_by_key ON images (key_name, created_unix_ms, id);
    """,
    # Detached generations: the durable queue replicas take work from (operations.py).
    _OPERATIONS,
    # What a caller-chosen request id asked for, so a repeat is answered from the store;
    # webhooks owed, so one whose server stopped is delivered by another.
    f"""
    ALTER TABLE requests ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';
    {WEBHOOK_DUE_COLUMN};
    {WEBHOOK_DUE_INDEX};
    """,
    # Runs on accounts over time, kept after they end (pg_shared.py).
    ACCOUNT_RUN_LOG_MIGRATION,
]
_MIGRATION_LOCK = 0x636F646578  # any constant shared by every replica
_KEY_LOCK = 0x6B6579  # advisory lock class of one key's admissions (two int4 keys)
# How long a completed request's outcome waits for PostgreSQL before its
# caller is told UNAVAILABLE: a restart answers again within a second or two.
OUTCOME_WAIT_S = 5.0
OUTCOME_RETRY_S = 0.2
# The key's newest request of an id that did not end refused; running on a
# replica whose lease lapsed (it died) reads as failed, as its restart records it.
_SAME_ID = (
    "SELECT {fields} FROM requests r LEFT JOIN replicas p ON p.name = r.replica "
    "WHERE r.request_id = %s AND r.key_name = %s AND r.status != 'refused' "
    "ORDER BY r.seq DESC LIMIT 1"
)


def _same_id_fields(lease_alive: str) -> str:
    return ", ".join(
        f"CASE WHEN r.status = 'running' AND (p.alive_until IS NULL OR NOT {lease_alive}) "
        "THEN 'failed' ELSE r.status END"
        if f == "status"
        else f"r.{f}"
        for f in _REQUEST_FIELDS
    )


# A key's running requests count while their replica's lease lives.
_RUNNING_OF_KEY = (
    "SELECT count(*) FROM requests r JOIN replicas p ON p.name = r.replica "
    "WHERE r.key_name = %s AND r.status = 'running' AND {lease_lives}"
)


_FLAGS = [_IMAGE_FIELDS.index(name) for name in ("resized", "enlarged")]


def _image_values(image) -> list:
    """As SQLite's, with the flags as booleans (records read back from the
    old JSON layout may carry 0/1)."""
    values = _sqlite_values(image)
    for i in _FLAGS:
        values[i] = bool(values[i])
    return values


def _pg(sql: str) -> str:
    """The shared SQL uses SQLite's `?`; psycopg takes `%s`."""
    return sql.replace("?", "%s")


def unavailable(exc: Exception) -> ServiceError:
    return ServiceError(
        Kind.UNAVAILABLE,
        "DATABASE_UNAVAILABLE",
        f"the database is not answering ({type(exc).__name__}); retry shortly",
    )


def replica_name(state_dir) -> str:
    """Stable across restarts of the same replica (its host and state
    directory), so a restarted replica finds what its dead self left."""
    return f"{socket.gethostname()}:{os.path.realpath(state_dir)}"


class PostgresMetadata(SqlQueries, OperationQueries):
    # Replicas claiming at once each take another row, none waits on another's.
    _CLAIM_LOCK = "FOR UPDATE SKIP LOCKED"

    def __init__(
        self,
        url: str,
        *,
        replica: str,
        pool_size: int = 4,
        wait_s: float = 5.0,
        lease_s: float = 15.0,
        query_budget_s: float = 1.0,
    ):
        self.replica = replica
        self._budget_ms = max(1, int(query_budget_s * 1000))
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            timeout=wait_s,
            open=False,
            kwargs={"autocommit": True, "connect_timeout": max(1, int(wait_s))},
            check=psycopg_pool.ConnectionPool.check_connection,
            reconnect_timeout=0,
        )
        try:
            self._pool.open(wait=True, timeout=30)
        except psycopg_pool.PoolTimeout:
            self._pool.close()
            raise SystemExit(
                f"cannot reach PostgreSQL at {_redacted(url)}: is it running, and the URL right?"
            ) from None
        self._migrate()
        self.lease = ReplicaLease(self, lease_s, wait_s)
        self._accounts = PostgresAccounts(self, self.lease)

    @contextlib.contextmanager
    def connection(self):
        """A pooled connection (autocommit); UNAVAILABLE while PostgreSQL is away."""
        try:
            with self._pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
            raise unavailable(exc) from None

    def _run(self, sql: str, args=()) -> list:
        with self.connection() as conn:
            return conn.execute(_pg(sql), args).fetchall()

    def _read(self, sql: str, args=()) -> list:
        """Within the query time budget (statement_timeout for this read alone)."""
        with self.connection() as conn:
            try:
                with conn.transaction():
                    conn.execute(f"SET LOCAL statement_timeout = {self._budget_ms}")
                    return conn.execute(_pg(sql), args).fetchall()
            except psycopg.errors.QueryCanceled:  # before connection() takes it for an outage
                raise too_slow(self._budget_ms / 1000) from None

    def write(self, sql: str, args=()) -> int:
        with self.connection() as conn:
            return conn.execute(_pg(sql), args).rowcount

    def _migrate(self) -> None:
        with self.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
            done = row[0] or 0
            for version, sql in enumerate(MIGRATIONS[done:], start=done + 1):
                conn.execute(sql)
                conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))

    def account_ledger(self) -> PostgresAccounts:
        return self._accounts

    def close(self) -> None:
        self.lease.close()
        self._pool.close()

    # -- images ---------------------------------------------------------------

    def _insert_image_sql(self) -> str:
        marks = ", ".join("?" for _ in _IMAGE_COLUMNS)
        return (
            f"INSERT INTO images ({', '.join(_IMAGE_COLUMNS)}) VALUES ({marks}) "
            "ON CONFLICT (id) DO NOTHING"
        )

    def add_image(self, image) -> None:
        self.write(self._insert_image_sql(), _image_values(image))

    def add_images(self, images: list) -> None:
        with self.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.executemany(_pg(self._insert_image_sql()), [_image_values(i) for i in images])

    def delete_image(self, image_id: str, owner: str | None = None):
        where, args = owned("id = ?", [image_id], owner)
        rows = self._run(
            f"DELETE FROM images WHERE {where} RETURNING {', '.join(_IMAGE_COLUMNS)}", args
        )
        return _image(rows[0]) if rows else None

    @staticmethod
    def _prompt_filter(table: str, key: str, text: str):
        if not text:
            return None
        return "prompt ILIKE ? ESCAPE '\\'", [_like(text)]

    # -- requests -------------------------------------------------------------

    def begin_request(
        self,
        record: RequestRecord,
        admission: Admission | None = None,
        same_id: SameId | None = None,
    ) -> int:
        values = _request_values(record)
        values["replica"] = self.replica
        columns = list(values)
        sql = _pg(
            f"INSERT INTO requests ({', '.join(columns)}) VALUES "
            f"({', '.join('?' for _ in columns)}) "
            "RETURNING seq"
        )
        with self.connection() as conn, conn.transaction():
            if admission is not None or same_id is not None:
                # Admissions of one key, on any replica, one at a time: the
                # checks and the insert are one step (a refusal rolls back).
                conn.execute(
                    "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_KEY_LOCK, record.key_name)
                )
            if same_id is not None:
                row = conn.execute(
                    _SAME_ID.format(
                        fields=_same_id_fields(lease_lives(self.lease.restart_grace_s))
                    ),
                    (record.request_id, record.key_name),
                ).fetchone()
                same_id(_request(row) if row else None)
            if admission is not None:
                admission.check(self._key_load(conn, record.key_name, admission.since_unix_ms))
            return int(conn.execute(sql, list(values.values())).fetchone()[0])

    def finish_request(self, seq: int, **fields) -> None:
        """The outcome frees the key's slot: if PostgreSQL is away it is
        written once it answers again (in order), not lost."""
        self.lease.write_or_later(*_finish_sql(seq, fields))

    def finish_request_now(self, seq: int, **fields) -> None:
        """Written before it returns: the outcome a caller is about to be told.
        A restart of PostgreSQL (a second or two) is waited out; past
        OUTCOME_WAIT_S the outcome is kept to be written once PostgreSQL
        answers, as `finish_request` does, and UNAVAILABLE is raised."""
        sql, args = _finish_sql(seq, fields)
        deadline = time.monotonic() + OUTCOME_WAIT_S
        while True:
            try:
                self.write(sql, args)
                return
            except ServiceError:
                if time.monotonic() >= deadline:
                    self.lease.write_or_later(sql, args)
                    raise
            time.sleep(OUTCOME_RETRY_S)

    def key_load(self, key_name: str, since_unix_ms: int) -> KeyLoad:
        with self.connection() as conn:
            return self._key_load(conn, key_name, since_unix_ms)

    def _key_load(self, conn, key_name: str, since_unix_ms: int) -> KeyLoad:
        """Across every replica: the rows are shared. A killed replica's
        running requests stop counting as running when its lease lapses; the
        images they asked for count until it restarts and ends them."""
        alive = lease_lives(self.lease.restart_grace_s)
        (running,) = conn.execute(_RUNNING_OF_KEY.format(lease_lives=alive), (key_name,)).fetchone()
        (images,) = conn.execute(_pg(IMAGES_OF_KEY_SINCE), (key_name, since_unix_ms)).fetchone()
        return KeyLoad(int(running), int(images))

    def end_interrupted(self, now_unix_ms: int) -> int:
        """Requests this replica left "running" when it died; others' are theirs."""
        return self.write(
            "UPDATE requests SET status = 'failed', error_reason = 'SERVER_STOPPED', "
            "error_message = 'the server stopped while the request ran', ended_unix_ms = ? "
            "WHERE status = 'running' AND replica = ?",
            (now_unix_ms, self.replica),
        )


def _finish_sql(seq: int, fields: dict) -> tuple[str, tuple]:
    fields = _list_text(fields)
    assignments = ", ".join(f"{name} = %s" for name in fields)
    return f"UPDATE requests SET {assignments} WHERE seq = %s", (*fields.values(), seq)


def _redacted(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
