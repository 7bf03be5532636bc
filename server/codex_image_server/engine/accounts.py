"""A pool of Codex accounts: several CODEX_HOMEs, each its own login and its
own concurrency. A candidate goes to the least busy ready account; one that
answered "usage limit" is skipped until its reset. With no accounts
configured the pool is one account, "default", on the inherited CODEX_HOME.

Setting form: `NAME=PATH` or `NAME:N=PATH` (N: runs at once on it).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import threading
import time
from pathlib import Path

from ..errors import Kind, ServiceError
from .image_locator import codex_home
from .readiness import Readiness, ReadinessCache

DEFAULT_NAME = "default"
_EXHAUSTED_WITHOUT_RESET_S = 15 * 60  # codex did not say when: try again later


@dataclasses.dataclass(frozen=True)
class AccountSpec:
    name: str
    home: Path
    limit: int


def parse(entries: tuple[str, ...], default_limit: int) -> list[AccountSpec]:
    """Settings entries -> specs; raises ValueError with the bad entry."""
    specs, names = [], set()
    for entry in entries:
        head, sep, path = entry.partition("=")
        name, _, limit = head.partition(":")
        name = name.strip()
        if not sep or not name or not path.strip() or name in names:
            raise ValueError(f"account {entry!r}: expected NAME=PATH or NAME:N=PATH with a unique NAME")
        try:
            n = int(limit) if limit else default_limit
        except ValueError:
            raise ValueError(f"account {entry!r}: N must be a number") from None
        if n < 1:
            raise ValueError(f"account {entry!r}: N must be at least 1")
        names.add(name)
        specs.append(AccountSpec(name, Path(path.strip()).expanduser(), n))
    return specs


@dataclasses.dataclass(frozen=True)
class AccountState:
    name: str
    home: Path
    readiness: Readiness
    in_use: int
    limit: int
    exhausted_until: float  # unix seconds; 0 when not exhausted

    @property
    def ready(self) -> bool:
        return self.readiness.ready and not self.exhausted_until


class Account:
    def __init__(self, spec: AccountSpec, readiness: ReadinessCache):
        self.spec = spec
        self.name = spec.name
        self.readiness = readiness
        self.in_use = 0
        self.exhausted_until = 0.0

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["CODEX_HOME"] = str(self.spec.home)
        return env


class AccountPool:
    def __init__(self, specs: list[AccountSpec], make_readiness):
        self._accounts = [Account(s, make_readiness(s.home)) for s in specs]
        self._cond = threading.Condition()

    @classmethod
    def from_settings(cls, entries: tuple[str, ...], default_limit: int, make_readiness) -> "AccountPool":
        specs = parse(entries, default_limit) or [AccountSpec(DEFAULT_NAME, codex_home(dict(os.environ)),
                                                             default_limit)]
        return cls(specs, make_readiness)

    @property
    def single(self) -> bool:
        return len(self._accounts) == 1

    def _exhausted(self, account: Account, now: float) -> bool:
        if account.exhausted_until and account.exhausted_until <= now:
            account.exhausted_until = 0.0  # its reset time has passed
        return bool(account.exhausted_until)

    def acquire(self, cancelled: threading.Event, skip: frozenset[str] = frozenset()) -> Account:
        """The least busy ready account with a free run; waits while all are busy.
        Raises QUOTA_EXHAUSTED when every account is used up (or was tried)."""
        while True:
            if cancelled.is_set():
                raise ServiceError(Kind.CANCELLED, "REQUEST_CANCELED", "cancelled")
            # Probes may start codex: ask outside the lock (answers are cached).
            logged_in = {a.name for a in self._accounts if a.name not in skip and a.readiness.get().ready}
            with self._cond:
                now = time.time()
                usable = [a for a in self._accounts if a.name in logged_in and not self._exhausted(a, now)]
                if not usable:
                    raise self._all_exhausted(now)
                free = [a for a in usable if a.in_use < a.spec.limit]
                if free:
                    best = min(free, key=lambda a: (a.in_use / a.spec.limit, a.in_use))
                    best.in_use += 1
                    return best
                self._cond.wait(timeout=0.2)

    def _all_exhausted(self, now: float) -> ServiceError:
        until = [a.exhausted_until for a in self._accounts if a.exhausted_until]
        if not until:
            return ServiceError(Kind.FAILED_PRECONDITION, "CODEX_NOT_LOGGED_IN",
                                "no Codex account is ready: check `codex login status` for each account")
        reset = min(until)
        at = dt.datetime.fromtimestamp(reset, dt.timezone.utc).isoformat().replace("+00:00", "Z")
        return ServiceError(Kind.RESOURCE_EXHAUSTED, "QUOTA_EXHAUSTED",
                            f"every Codex account has used up its image generation quota; the first resets "
                            f"at {at}", metadata={"resets_at": at}, retry_after_s=max(1, int(reset - now)))

    def release(self, account: Account) -> None:
        with self._cond:
            account.in_use -= 1
            self._cond.notify_all()

    def mark_exhausted(self, account: Account, error: ServiceError) -> None:
        """Skip it until the reset codex reported (or a while, if it did not say)."""
        until = 0.0
        if "resets_at" in error.metadata:
            try:
                until = dt.datetime.fromisoformat(error.metadata["resets_at"].replace("Z", "+00:00")).timestamp()
            except ValueError:
                until = 0.0
        if not until:
            until = time.time() + (error.retry_after_s or _EXHAUSTED_WITHOUT_RESET_S)
        with self._cond:
            account.exhausted_until = max(account.exhausted_until, until)
            self._cond.notify_all()

    def snapshot(self, cached: bool = False) -> tuple | None:
        """(account, readiness, runs in use, exhausted until) of each account,
        cheap to compare. With `cached`, from the last probes only, so it never
        blocks (None before every account's first probe)."""
        now = time.time()
        with self._cond:
            raw = [(a, a.in_use, a.exhausted_until if self._exhausted(a, now) else 0.0) for a in self._accounts]
        rows = tuple((a, a.readiness.cached() if cached else a.readiness.get(), in_use, until)
                     for a, in_use, until in raw)
        return None if any(r is None for _, r, _, _ in rows) else rows

    @staticmethod
    def states_of(rows: tuple) -> list[AccountState]:
        return [AccountState(a.name, a.spec.home, r, in_use, a.spec.limit, until) for a, r, in_use, until in rows]

    def states(self) -> list[AccountState]:
        return self.states_of(self.snapshot())

    def cached_readiness(self) -> Readiness | None:
        """Like `readiness` from the last probes only (None before every account's first)."""
        results = [a.readiness.cached() for a in self._accounts]
        if any(r is None for r in results):
            return None
        return next((r for r in results if r.ready), results[0])

    def fresh_readiness(self) -> Readiness | None:
        """Like `readiness` when no account needs a probe, else None."""
        results = [a.readiness.fresh() for a in self._accounts]
        if any(r is None for r in results):
            return None
        return next((r for r in results if r.ready), results[0])

    def readiness(self, fresh: bool = False) -> Readiness:
        """The server's readiness: the first account that can generate, else the first one's problem."""
        results = [a.readiness.get(fresh) for a in self._accounts]
        return next((r for r in results if r.ready), results[0])
