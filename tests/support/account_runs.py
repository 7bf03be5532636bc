"""How many runs each Codex account had at once, worked out from the shared
store's own record of them (PostgreSQL's `account_run_log`: when each run was
taken and when it ended, by the database's clock), for the checks that an
account never ran more than its budget across every replica."""

from __future__ import annotations

import dataclasses
import datetime as dt

import psycopg


@dataclasses.dataclass(frozen=True)
class Run:
    account: str
    replica: str
    taken_at: dt.datetime
    ended_at: dt.datetime | None  # None: never ended (still held, or leaked)
    ended_by: str


def read(database_url: str) -> list[Run]:
    with psycopg.connect(database_url, connect_timeout=10) as conn:
        rows = conn.execute(
            "SELECT account, replica, taken_at, ended_at, ended_by FROM account_run_log "
            "ORDER BY taken_at"
        ).fetchall()
    return [Run(*row) for row in rows]


def at_the_peak(runs: list[Run], account: str) -> list[Run]:
    """The runs of `account` that overlap at its busiest moment (to show what went wrong)."""
    mine = [r for r in runs if r.account == account]
    best: list[Run] = []
    for run in mine:
        at = run.taken_at
        now = [r for r in mine if r.taken_at <= at and (r.ended_at is None or r.ended_at > at)]
        if len(now) > len(best):
            best = now
    return best


def most_at_once(runs: list[Run]) -> dict[str, int]:
    """Per account, the most runs whose [taken, ended] overlap. An end and a
    start at the same instant do not overlap (the store frees a run before
    another can take it: ends sort first). A run never ended counts to the end."""
    events: dict[str, list[tuple[dt.datetime, int]]] = {}
    for run in runs:
        events.setdefault(run.account, []).append((run.taken_at, 1))
        if run.ended_at is not None:
            events[run.account].append((run.ended_at, -1))
    most = {}
    for account, marks in events.items():
        now = peak = 0
        for _, step in sorted(marks):  # at one instant, -1 before +1
            now += step
            peak = max(peak, now)
        most[account] = peak
    return most
