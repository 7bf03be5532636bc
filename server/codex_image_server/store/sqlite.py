"""The index of images and requests in one SQLite file (WAL).

One connection behind a lock: every statement here is an indexed lookup or
a bounded page, so holding the lock is short. SQL stays close to what
PostgreSQL also takes (row values, ON CONFLICT, no SQLite-only functions)
so the replica store can share it.

Text in the prompt: a page is the newest rows that match, so a common word
is found fastest by walking the time index and testing each prompt (LIKE),
and a rare one by a trigram index (FTS5; pg_trgm is PostgreSQL's twin),
whose few hits are then sorted. A bounded probe of the trigram index picks
between the two per query.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from codex_image_server.errors import Kind, ServiceError
from codex_image_server.store.operations import (
    SQLITE_SCHEMA as _OPERATIONS_SCHEMA,
    WEBHOOK_DUE_COLUMN,
    WEBHOOK_DUE_INDEX,
    OperationQueries,
)
from codex_image_server.store.paging import Cursor
from codex_image_server.store.records import (
    Admission,
    KeyLoad,
    Query,
    RequestRecord,
    SameId,
    StoredImage,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
  id TEXT PRIMARY KEY,
  request_seq INTEGER NOT NULL DEFAULT 0,
  request_id TEXT NOT NULL,
  idx INTEGER NOT NULL,
  label TEXT NOT NULL,
  mime_type TEXT NOT NULL,
  width INTEGER NOT NULL,
  height INTEGER NOT NULL,
  byte_size INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  revised_prompt TEXT NOT NULL,
  thread_id TEXT NOT NULL,
  prompt TEXT NOT NULL,
  requested_size TEXT NOT NULL,
  resolved_size TEXT NOT NULL,
  aspect TEXT NOT NULL,
  quality TEXT NOT NULL,
  output_format TEXT NOT NULL,
  duration_ms INTEGER NOT NULL,
  created_unix_ms INTEGER NOT NULL,
  target_size TEXT NOT NULL DEFAULT '',
  aspect_ratio TEXT NOT NULL DEFAULT '',
  aspect_source TEXT NOT NULL DEFAULT '',
  fit TEXT NOT NULL DEFAULT '',
  native_width INTEGER NOT NULL DEFAULT 0,
  native_height INTEGER NOT NULL DEFAULT 0,
  resized INTEGER NOT NULL DEFAULT 0,
  enlarged INTEGER NOT NULL DEFAULT 0,
  reference_uses TEXT NOT NULL DEFAULT '[]',
  key_name TEXT NOT NULL DEFAULT '',
  account TEXT NOT NULL DEFAULT '',
  background TEXT NOT NULL DEFAULT 'auto',
  alpha_source TEXT NOT NULL DEFAULT '',
  transparency TEXT NOT NULL DEFAULT '',
  usage TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS images_by_time ON images (created_unix_ms, id);
CREATE INDEX IF NOT EXISTS images_by_request ON images (request_id);
CREATE INDEX IF NOT EXISTS images_by_request_seq ON images (request_seq);
CREATE TABLE IF NOT EXISTS requests (
  seq INTEGER PRIMARY KEY,
  request_id TEXT NOT NULL,
  status TEXT NOT NULL,
  created_unix_ms INTEGER NOT NULL,
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
  ended_unix_ms INTEGER NOT NULL DEFAULT 0,
  error_reason TEXT NOT NULL DEFAULT '',
  error_message TEXT NOT NULL DEFAULT '',
  queue_wait_ms INTEGER NOT NULL DEFAULT 0,
  codex_ms INTEGER NOT NULL DEFAULT 0,
  duration_ms INTEGER NOT NULL DEFAULT 0,
  accounts TEXT NOT NULL DEFAULT '',
  image_ids TEXT NOT NULL DEFAULT '',
  image_count INTEGER NOT NULL DEFAULT 0,
  fingerprint TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS requests_by_time ON requests (created_unix_ms, seq);
CREATE INDEX IF NOT EXISTS requests_by_id ON requests (request_id, seq);
CREATE INDEX IF NOT EXISTS requests_by_key ON requests (key_name, created_unix_ms);
CREATE INDEX IF NOT EXISTS requests_running_by_key ON requests (key_name) WHERE status = 'running';
CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS images_by_key ON images (key_name, created_unix_ms, id);
"""

# Trigram indexes of the prompts, kept in step by triggers (external content:
# the text is stored once, in the table itself).
_TEXT_SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS images_text USING fts5(
  prompt, content='images', content_rowid='rowid', tokenize='trigram');
CREATE TRIGGER IF NOT EXISTS images_text_insert AFTER INSERT ON images BEGIN
  INSERT INTO images_text(rowid, prompt) VALUES (new.rowid, new.prompt); END;
CREATE TRIGGER IF NOT EXISTS images_text_delete AFTER DELETE ON images BEGIN
  INSERT INTO images_text(images_text, rowid, prompt) VALUES ('delete', old.rowid, old.prompt); END;
CREATE VIRTUAL TABLE IF NOT EXISTS requests_text USING fts5(
  prompt, content='requests', content_rowid='seq', tokenize='trigram');
CREATE TRIGGER IF NOT EXISTS requests_text_insert AFTER INSERT ON requests BEGIN
  INSERT INTO requests_text(rowid, prompt) VALUES (new.seq, new.prompt); END;
CREATE TRIGGER IF NOT EXISTS requests_text_update AFTER UPDATE OF prompt ON requests BEGIN
  INSERT INTO requests_text(requests_text, rowid, prompt) VALUES ('delete', old.seq, old.prompt);
  INSERT INTO requests_text(rowid, prompt) VALUES (new.seq, new.prompt); END;
CREATE TRIGGER IF NOT EXISTS requests_text_delete AFTER DELETE ON requests BEGIN
  INSERT INTO requests_text(requests_text, rowid, prompt) VALUES ('delete', old.seq, old.prompt);
  END;
"""
# Below this many hits the trigram index answers; above, the time-ordered scan.
_FEW_HITS = 1000
_TRIGRAM = 3  # the trigram index needs at least this many characters

_IMAGE_FIELDS = [f.name for f in dataclasses.fields(StoredImage)]
_RENAMED = {"index": "idx", "references": "reference_uses"}  # names SQL keeps for itself
_IMAGE_COLUMNS = [_RENAMED.get(n, n) for n in _IMAGE_FIELDS]
_REFERENCES = _IMAGE_FIELDS.index("references")
_JSON_OR_NONE = ("transparency", "usage")  # dicts kept as JSON text, '' for None
_REQUEST_FIELDS = [f.name for f in dataclasses.fields(RequestRecord)]
_LISTS = ("accounts", "image_ids")  # tuples kept as space-separated text


# The key's newest request of an id that did not end refused (request ids are the caller's).
SAME_ID = (
    "SELECT {fields} FROM requests WHERE request_id = ? AND key_name = ? AND status != 'refused' "
    "ORDER BY seq DESC LIMIT 1"
)

# A key's load (shared with PostgreSQL, which counts running requests of live replicas only).
RUNNING_OF_KEY = "SELECT count(*) FROM requests WHERE key_name = ? AND status = 'running'"
IMAGES_OF_KEY_SINCE = (
    "SELECT COALESCE(SUM(CASE WHEN status = 'running' THEN count ELSE image_count END), 0) "
    "FROM requests WHERE key_name = ? AND created_unix_ms >= ?"
)


def owned(condition: str, args: list, owner: str | None) -> tuple[str, list]:
    """`condition`, narrowed to one key's rows when `owner` is set (tenancy.py)."""
    if owner is None:
        return condition, args
    return f"{condition} AND key_name = ?", [*args, owner]


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _phrase(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _filters(
    query: Query, time_column: str, prompt_sql: tuple[str, list] | None = None
) -> tuple[list[str], list]:
    where: list[str] = []
    args: list = []
    if query.start_unix_ms:
        where.append(f"{time_column} >= ?")
        args.append(query.start_unix_ms)
    if query.end_unix_ms:
        where.append(f"{time_column} < ?")
        args.append(query.end_unix_ms)
    for column in ("request_id", "key_name"):
        if getattr(query, column):
            where.append(f"{column} = ?")
            args.append(getattr(query, column))
    if query.owner is not None:
        where.append("key_name = ?")
        args.append(query.owner)
    if query.prompt_contains:
        sql, extra = prompt_sql or _like_condition(query.prompt_contains)
        where.append(sql)
        args += extra
    return where, args


def _like_condition(text: str) -> tuple[str, list]:
    # LIKE is case-insensitive for ASCII in SQLite (ILIKE in PostgreSQL).
    return "prompt LIKE ? ESCAPE '\\'", [_like(text)]


def _image(row) -> StoredImage:
    values = list(row)
    values[_REFERENCES] = tuple(json.loads(values[_REFERENCES] or "[]"))
    for name in ("resized", "enlarged"):
        values[_IMAGE_FIELDS.index(name)] = bool(values[_IMAGE_FIELDS.index(name)])
    for name in _JSON_OR_NONE:
        i = _IMAGE_FIELDS.index(name)
        values[i] = json.loads(values[i]) if values[i] else None
    return StoredImage(*values)


def _image_values(image: StoredImage) -> list:
    values = [getattr(image, name) for name in _IMAGE_FIELDS]
    values[_REFERENCES] = json.dumps(list(image.references), separators=(",", ":"))
    for name in _JSON_OR_NONE:
        i = _IMAGE_FIELDS.index(name)
        values[i] = json.dumps(values[i], separators=(",", ":")) if values[i] else ""
    return values


def _request(row) -> RequestRecord:
    values = dict(zip(_REQUEST_FIELDS, row, strict=True))
    for name in _LISTS:
        values[name] = tuple(values[name].split()) if values[name] else ()
    return RequestRecord(**values)


def _request_values(record: RequestRecord) -> dict:
    """A new request's columns and values (seq is the database's to give)."""
    values = _list_text(dataclasses.asdict(record))
    values.pop("seq")
    return values


def _list_text(fields: dict) -> dict:
    """Tuples kept as space-separated text."""
    return {name: " ".join(value) if name in _LISTS else value for name, value in fields.items()}


def too_slow(budget_s: float) -> ServiceError:
    return ServiceError(
        Kind.DEADLINE_EXCEEDED,
        "QUERY_TOO_SLOW",
        f"the query ran past its {int(budget_s * 1000)} ms budget and was stopped; narrow it "
        "(a time range, a key, a longer prompt_contains)",
    )


class SqlQueries:
    """The index's reads, the same SQL on SQLite and PostgreSQL. A store gives
    `_run(sql, args)` (`?` placeholders), `_read(sql, args)` (the same within
    the query time budget, for the lists a caller shapes) and
    `_prompt_filter(table, key, text)` (its way to find a prompt's text, or
    None for no condition)."""

    if TYPE_CHECKING:  # given by the store this is mixed into

        def _run(self, sql: str, args=()) -> list: ...
        def _read(self, sql: str, args=()) -> list: ...
        def _prompt_filter(self, table: str, key: str, text: str) -> tuple[str, list] | None: ...

    def page_secret(self) -> bytes:
        """The key page tokens are signed with: made once per store, kept in
        it (so every replica sharing the store accepts the others' tokens)."""
        if getattr(self, "_page_secret", None) is None:
            self._run(
                "INSERT INTO secrets (name, value) VALUES ('page_token', ?) "
                "ON CONFLICT (name) DO NOTHING RETURNING name",
                (secrets.token_hex(32),),
            )
            self._page_secret = bytes.fromhex(
                self._run("SELECT value FROM secrets WHERE name = 'page_token'")[0][0]
            )
        return self._page_secret

    def get_image(self, image_id: str, owner: str | None = None) -> StoredImage | None:
        """The image; with `owner`, only if that key made it."""
        where, args = owned("id = ?", [image_id], owner)
        rows = self._run(f"SELECT {', '.join(_IMAGE_COLUMNS)} FROM images WHERE {where}", args)
        return _image(rows[0]) if rows else None

    def list_images(self, query: Query, after: Cursor | None, limit: int) -> list[StoredImage]:
        where, args = _filters(
            query, "created_unix_ms", self._prompt_filter("images", "rowid", query.prompt_contains)
        )
        if after is not None:
            where.append("(created_unix_ms, id) < (?, ?)")
            args += [after.created_unix_ms, after.id]
        sql = (
            f"SELECT {', '.join(_IMAGE_COLUMNS)} FROM images"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY created_unix_ms DESC, id DESC LIMIT ?"
        )
        return [_image(r) for r in self._read(sql, args + [limit])]

    def recorded_ids(self, image_ids: list[str]) -> set[str]:
        """Those of `image_ids` that have a record (a batch, for the sweep of unrecorded
        objects)."""
        if not image_ids:
            return set()
        marks = ", ".join("?" for _ in image_ids)
        return {
            row[0]
            for row in self._run(f"SELECT id FROM images WHERE id IN ({marks})", list(image_ids))
        }

    def images_of_request(self, seq: int) -> list[StoredImage]:
        rows = self._run(
            f"SELECT {', '.join(_IMAGE_COLUMNS)} FROM images WHERE request_seq = ? ORDER BY idx",
            (seq,),
        )
        return [_image(r) for r in rows]

    def oldest_images(self, limit: int) -> list[StoredImage]:
        rows = self._run(
            f"SELECT {', '.join(_IMAGE_COLUMNS)} FROM images ORDER BY created_unix_ms, id LIMIT ?",
            (limit,),
        )
        return [_image(r) for r in rows]

    def totals(self) -> tuple[int, int]:
        count, size = self._run("SELECT COUNT(*), COALESCE(SUM(byte_size), 0) FROM images")[0]
        return int(count), int(size)

    def get_request(self, request_id: str, owner: str | None = None) -> RequestRecord | None:
        """The newest request with this id; with `owner`, the newest of that key's."""
        where, args = owned("request_id = ?", [request_id], owner)
        rows = self._run(
            f"SELECT {', '.join(_REQUEST_FIELDS)} FROM requests WHERE {where} "
            "ORDER BY seq DESC LIMIT 1",
            args,
        )
        return _request(rows[0]) if rows else None

    def list_requests(self, query: Query, after: Cursor | None, limit: int) -> list[RequestRecord]:
        where, args = _filters(
            query, "created_unix_ms", self._prompt_filter("requests", "seq", query.prompt_contains)
        )
        if query.status:
            where.append("status = ?")
            args.append(query.status)
        if after is not None:
            where.append("(created_unix_ms, seq) < (?, ?)")
            args += [after.created_unix_ms, int(after.id)]
        sql = (
            f"SELECT {', '.join(_REQUEST_FIELDS)} FROM requests"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY created_unix_ms DESC, seq DESC LIMIT ?"
        )
        return [_request(r) for r in self._read(sql, args + [limit])]

    def delete_requests_before(self, cutoff_unix_ms: int) -> int:
        """Retention: ended requests that arrived before the cutoff go."""
        return len(
            self._run(
                "DELETE FROM requests WHERE created_unix_ms < ? AND status != 'running' "
                "RETURNING seq",
                (cutoff_unix_ms,),
            )
        )


class SqliteMetadata(SqlQueries, OperationQueries):
    def __init__(self, path: Path, query_budget_s: float = 1.0):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._budget_s = query_budget_s
        self._deadline = 0.0  # of the bounded read running now; 0: none
        self._db = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=10
        )
        # Every 1000 VM steps: a read past its deadline is interrupted, so
        # no caller's query holds the one connection (and its lock) for long.
        self._db.set_progress_handler(self._over_budget, 1000)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable against a process crash in WAL mode; the image
        # bytes themselves are fsynced by the blob store.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._db.executescript(_OPERATIONS_SCHEMA)
        self._add_missing_columns()
        self._text_index = self._make_text_index()

    def _add_missing_columns(self) -> None:
        """An index file from before a column was added gets it (empty)."""
        have = {row[1] for row in self._db.execute("PRAGMA table_info(requests)")}
        if "fingerprint" not in have:
            self._db.execute("ALTER TABLE requests ADD COLUMN fingerprint TEXT NOT NULL DEFAULT ''")
        if "webhook_due_unix_ms" not in {
            row[1] for row in self._db.execute("PRAGMA table_info(operations)")
        }:
            self._db.execute(WEBHOOK_DUE_COLUMN)
        self._db.execute(WEBHOOK_DUE_INDEX)

    def _make_text_index(self) -> bool:
        try:
            fresh = not self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'images_text'"
            ).fetchall()
            self._db.executescript(_TEXT_SCHEMA)
        except sqlite3.OperationalError:
            return False  # an SQLite without FTS5 trigrams: LIKE scans only
        if fresh:  # an index file from before the text index
            self._db.execute("INSERT INTO images_text(images_text) VALUES ('rebuild')")
            self._db.execute("INSERT INTO requests_text(requests_text) VALUES ('rebuild')")
        return True

    def _prompt_filter(self, table: str, key: str, text: str) -> tuple[str, list] | None:
        """The trigram index when the text is rare enough, else None (LIKE scan)."""
        if not text or not self._text_index or len(text) < _TRIGRAM:
            return None
        hits = self._read(
            f"SELECT count(*) FROM (SELECT rowid FROM {table}_text "
            f"WHERE {table}_text MATCH ? LIMIT {_FEW_HITS})",
            (_phrase(text),),
        )[0][0]
        if hits >= _FEW_HITS:
            return None
        return f"{key} IN (SELECT rowid FROM {table}_text WHERE {table}_text MATCH ?)", [
            _phrase(text)
        ]

    def _run(self, sql: str, args=()) -> list:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _over_budget(self) -> int:
        return 1 if self._deadline and time.monotonic() > self._deadline else 0

    def _read(self, sql: str, args=()) -> list:
        with self._lock:
            self._deadline = time.monotonic() + self._budget_s
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.OperationalError:
                if self._over_budget():
                    raise too_slow(self._budget_s) from None
                raise
            finally:
                self._deadline = 0.0

    def _write(self, sql: str, args=()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, args)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- images ---------------------------------------------------------------

    def add_image(self, image: StoredImage) -> None:
        marks = ", ".join("?" for _ in _IMAGE_COLUMNS)
        self._write(
            f"INSERT INTO images ({', '.join(_IMAGE_COLUMNS)}) VALUES ({marks}) "
            "ON CONFLICT (id) DO NOTHING",
            _image_values(image),
        )

    def add_images(self, images: list[StoredImage]) -> None:
        """Many at once, in one transaction (migration, benchmarks)."""
        marks = ", ".join("?" for _ in _IMAGE_COLUMNS)
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    f"INSERT INTO images ({', '.join(_IMAGE_COLUMNS)}) VALUES ({marks}) "
                    "ON CONFLICT (id) DO NOTHING",
                    [_image_values(i) for i in images],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def delete_image(self, image_id: str, owner: str | None = None) -> StoredImage | None:
        where, args = owned("id = ?", [image_id], owner)
        with self._lock:
            rows = self._db.execute(
                f"DELETE FROM images WHERE {where} RETURNING {', '.join(_IMAGE_COLUMNS)}", args
            ).fetchall()
        return _image(rows[0]) if rows else None

    # -- requests -------------------------------------------------------------

    def begin_request(
        self,
        record: RequestRecord,
        admission: Admission | None = None,
        same_id: SameId | None = None,
    ) -> int:
        values = _request_values(record)
        columns = list(values)
        # One connection behind one lock: the checks and the insert are one step.
        with self._lock:
            if same_id is not None:
                rows = self._db.execute(
                    SAME_ID.format(fields=", ".join(_REQUEST_FIELDS)),
                    (record.request_id, record.key_name),
                ).fetchall()
                same_id(_request(rows[0]) if rows else None)
            if admission is not None:
                admission.check(self._key_load(record.key_name, admission.since_unix_ms))
            cursor = self._db.execute(
                f"INSERT INTO requests ({', '.join(columns)}) VALUES "
                f"({', '.join('?' for _ in columns)})",
                list(values.values()),
            )
        assert cursor.lastrowid is not None  # an INSERT's row
        return cursor.lastrowid

    def finish_request(self, seq: int, **fields) -> None:
        fields = _list_text(fields)
        assignments = ", ".join(f"{name} = ?" for name in fields)
        self._write(f"UPDATE requests SET {assignments} WHERE seq = ?", [*fields.values(), seq])

    def finish_request_now(self, seq: int, **fields) -> None:
        """One file, written before any call returns: the same as finish_request."""
        self.finish_request(seq, **fields)

    def key_load(self, key_name: str, since_unix_ms: int) -> KeyLoad:
        with self._lock:
            return self._key_load(key_name, since_unix_ms)

    def _key_load(self, key_name: str, since_unix_ms: int) -> KeyLoad:
        """Under the lock. Images: those made, and those asked for by requests
        still running (so concurrent requests cannot overshoot)."""
        running = self._db.execute(RUNNING_OF_KEY, (key_name,)).fetchone()[0]
        images = self._db.execute(IMAGES_OF_KEY_SINCE, (key_name, since_unix_ms)).fetchone()[0]
        return KeyLoad(int(running), int(images))

    def account_ledger(self) -> None:
        return None  # one process: the engine's own

    def end_interrupted(self, now_unix_ms: int) -> int:
        """Requests a dead server left "running" failed with it."""
        cursor = self._write(
            "UPDATE requests SET status = 'failed', error_reason = 'SERVER_STOPPED', "
            "error_message = 'the server stopped while the request ran', ended_unix_ms = ? "
            "WHERE status = 'running'",
            (now_unix_ms,),
        )
        return cursor.rowcount
