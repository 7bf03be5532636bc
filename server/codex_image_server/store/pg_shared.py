"""What replicas share besides the index, in PostgreSQL: each replica's lease
and the Codex accounts' ledger.

A replica's lease is one row, `alive_until`, renewed by a thread every third
of its length (PostgreSQL's clock, so replicas' clocks need not agree). What a
replica holds (runs on an account, running requests of a key) counts for the
others only while its lease lives: a SIGKILLed replica stops renewing, and
its holds free themselves one lease length later. A restarted replica (same
name: host and state directory) drops what its dead self held at start. A
restarted PostgreSQL gives every lease a grace from its own start (a lease
length, a renewal period and the connection pool's wait, which a renewal
begun during the outage sits out): while it was down nobody could renew,
and the runs of replicas that are alive must not be dropped as lapsed
(others would then start more runs on the account than its budget while
those still run). A replica also renews its lease with every run it takes.

Writes that free something (a run given back, a request's outcome) are never
lost to a database outage: they are retried by the lease thread until
PostgreSQL answers, so a budget is not kept used up by a blip.

Every run on an account is also written down for good (`account_run_log`):
when it was taken and when it ended (given back; or dropped because its
replica's lease lapsed or its replica restarted), by PostgreSQL's clock, in
the same statements that take and free it. So how many ran at once on an
account can be worked out afterwards from the store alone (`make chaos`
does), and a run given back after its lease lapsed shows how long it
really lasted. Rows ended more than a day ago go when a replica starts."""

from __future__ import annotations

import threading
import time

from codex_image_server.errors import ServiceError
from codex_image_server.runtime.logs import log

# Appended to postgres.MIGRATIONS.
ACCOUNT_RUN_LOG_MIGRATION = """
CREATE TABLE account_run_log (id BIGINT PRIMARY KEY, account TEXT NOT NULL, replica TEXT NOT NULL,
  taken_at TIMESTAMPTZ NOT NULL, ended_at TIMESTAMPTZ, ended_by TEXT NOT NULL DEFAULT '');
CREATE INDEX account_run_log_by_end ON account_run_log (ended_at);
"""
_LOG_KEPT = "1 day"

_ACCOUNT_LOCK = (
    0x61636374  # advisory lock class of one account's runs (two int4 keys; no clash with one int8)
)


def lease_lives(grace_s: float, replica: str = "p") -> str:
    """SQL: the lease of `replica` (a row of `replicas`) lives, counting a
    restarted PostgreSQL's grace (`ReplicaLease.restart_grace_s`)."""
    return (
        f"GREATEST({replica}.alive_until, pg_postmaster_start_time() "
        f"+ make_interval(secs => {float(grace_s)})) "
        "> clock_timestamp()"
    )


_RENEW_NOT_SHORTEN = (
    "INSERT INTO replicas (name, alive_until) VALUES "
    "(%s, clock_timestamp() + make_interval(secs => %s)) ON CONFLICT (name) DO UPDATE "
    "SET alive_until = GREATEST(replicas.alive_until, EXCLUDED.alive_until)"
)


def _runs(grace_s: float) -> str:
    """A run counts while its replica's lease lives."""
    return (
        "SELECT a.account, count(*) FROM account_runs a JOIN replicas p ON p.name = a.replica "
        f"WHERE a.account = ANY(%s) AND {lease_lives(grace_s)} GROUP BY a.account"
    )


def _ended(delete_returning_ids: str, by: str) -> str:
    """One statement: the runs the DELETE frees, ended in the log now (a
    lapse or restart does not overwrite an end already written)."""
    return (
        f"WITH gone AS ({delete_returning_ids}) UPDATE account_run_log "
        "SET ended_at = clock_timestamp(), "
        f"ended_by = '{by}' WHERE id IN (SELECT id FROM gone) AND ended_at IS NULL"
    )


class ReplicaLease:
    def __init__(self, db, ttl_s: float, pool_wait_s: float = 5.0):
        self._db = db
        self.ttl_s = ttl_s
        self.restart_grace_s = ttl_s + ttl_s / 3 + pool_wait_s
        self._lock = threading.Lock()
        self._later: list[tuple[str, tuple]] = []  # freeing writes PostgreSQL did not take yet
        self._stop = threading.Event()
        self.renew()
        db.write(
            _ended("DELETE FROM account_runs WHERE replica = %s RETURNING id", "restarted"),
            (db.replica,),
        )  # a dead self's runs
        db.write(
            "DELETE FROM account_run_log "
            f"WHERE ended_at < clock_timestamp() - interval '{_LOG_KEPT}'"
        )
        self._thread = threading.Thread(target=self._loop, name="replica-lease", daemon=True)
        self._thread.start()

    def renew(self) -> None:
        self._db.write(
            "INSERT INTO replicas (name, alive_until) VALUES (%s, clock_timestamp() + "
            "make_interval(secs => %s)) ON CONFLICT (name) DO UPDATE SET alive_until = "
            "EXCLUDED.alive_until",
            (self._db.replica, self.ttl_s),
        )

    def write_or_later(self, sql: str, args: tuple) -> None:
        """Now if PostgreSQL answers, else at the next renewal that it does (in order)."""
        with self._lock:
            if not self._later:
                try:
                    self._db.write(sql, args)
                    return
                except ServiceError:
                    log(
                        "store.write_deferred",
                        level="warning",
                        detail="PostgreSQL is not answering",
                    )
            self._later.append((sql, args))

    def _flush(self) -> None:
        with self._lock:
            while self._later:
                self._db.write(*self._later[0])
                self._later.pop(0)

    def _loop(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                self.renew()
                self._flush()
            except ServiceError:
                log(
                    "store.lease_not_renewed", level="warning", detail="PostgreSQL is not answering"
                )

    def close(self) -> None:
        """Stop renewing; end the lease at once so what is left frees now."""
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            self._flush()
            self._db.write(
                "UPDATE replicas SET alive_until = clock_timestamp() WHERE name = %s",
                (self._db.replica,),
            )
        except ServiceError:
            pass  # it lapses by itself


class PostgresAccounts:
    """engine.accounts.AccountLedger over PostgreSQL: a run is a row naming its
    replica, taken under an advisory lock per account (so two replicas cannot
    both take the last one); exhaustion is a row per account, kept until its
    reset time. Accounts are known by name: replicas give one account the
    same NAME (their own CODEX_HOME copies of its login)."""

    shared = True

    def __init__(self, db, lease: ReplicaLease):
        self._db = db
        self._lease = lease
        self._lock = threading.Lock()
        self._mine: dict[
            int, str
        ] = {}  # this replica's runs (for answers while PostgreSQL is away)
        self._until: dict[str, float] = {}  # exhaustion this replica saw

    def take(self, name: str, limit: int) -> int | None:
        now_ms = int(time.time() * 1000)
        with self._db.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_ACCOUNT_LOCK, name))
            row = conn.execute(
                "SELECT exhausted_until_unix_ms FROM accounts WHERE name = %s", (name,)
            ).fetchone()
            if row and row[0] > now_ms:
                return None
            # Runs of replicas whose lease lapsed are gone for good.
            conn.execute(
                _ended(
                    "DELETE FROM account_runs a USING replicas p WHERE a.account = %s AND "
                    f"p.name = a.replica AND NOT {lease_lives(self._lease.restart_grace_s)} "
                    "RETURNING a.id",
                    "lease lapsed",
                ),
                (name,),
            )
            (running,) = conn.execute(
                "SELECT count(*) FROM account_runs WHERE account = %s", (name,)
            ).fetchone()
            if running >= limit:
                return None
            # A replica that takes a run is alive: its lease is renewed with
            # the run, so the run is never born under a lease that lapsed
            # while its renewal thread waited (after an outage, say).
            conn.execute(_RENEW_NOT_SHORTEN, (self._db.replica, self._lease.ttl_s))
            (token,) = conn.execute(
                "INSERT INTO account_runs (account, replica) VALUES (%s, %s) RETURNING id",
                (name, self._db.replica),
            ).fetchone()
            conn.execute(
                "INSERT INTO account_run_log (id, account, replica, taken_at) "
                "VALUES (%s, %s, %s, clock_timestamp())",
                (token, name, self._db.replica),
            )
        with self._lock:
            self._mine[token] = name
        return token

    def give_back(self, token: int) -> None:
        with self._lock:
            self._mine.pop(token, None)
        # The end is written even when a lapse dropped the run already: it ran until now.
        self._lease.write_or_later(
            "WITH gone AS (DELETE FROM account_runs WHERE id = %s) UPDATE account_run_log SET "
            "ended_at = clock_timestamp(), "
            "ended_by = concat_ws(', then ', NULLIF(ended_by, ''), 'given back') "
            "WHERE id = %s",
            (token, token),
        )

    def mark_exhausted(self, name: str, until: float) -> None:
        with self._lock:
            self._until[name] = max(self._until.get(name, 0.0), until)
        self._lease.write_or_later(
            "INSERT INTO accounts (name, exhausted_until_unix_ms) VALUES (%s, %s) ON CONFLICT "
            "(name) DO UPDATE "
            "SET exhausted_until_unix_ms = GREATEST(accounts.exhausted_until_unix_ms, "
            "EXCLUDED.exhausted_until_unix_ms)",
            (name, int(until * 1000)),
        )

    def load(self, names: list[str]) -> dict[str, tuple[int, float]]:
        """(runs, exhausted until) per account; this replica's own view while
        PostgreSQL does not answer (Health still answers then)."""
        now = time.time()
        with self._lock:
            runs = {n: sum(1 for m in self._mine.values() if m == n) for n in names}
            until = {n: self._until.get(n, 0.0) for n in names}
        try:
            with self._db.connection() as conn:
                shared_runs = dict(
                    conn.execute(_runs(self._lease.restart_grace_s), (names,)).fetchall()
                )
                rows = conn.execute(
                    "SELECT name, exhausted_until_unix_ms FROM accounts WHERE name = ANY(%s)",
                    (names,),
                ).fetchall()
        except ServiceError:
            pass
        else:
            runs = {n: int(shared_runs.get(n, 0)) for n in names}
            for name, ms in rows:
                until[name] = max(until[name], ms / 1000)
        return {n: (runs[n], until[n] if until[n] > now else 0.0) for n in names}
