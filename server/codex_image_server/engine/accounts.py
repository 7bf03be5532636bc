"""A pool of Codex accounts: several CODEX_HOMEs, each its own login and its
own concurrency. A candidate goes to the least busy ready account; one that
answered "usage limit" is skipped until its reset. With no accounts
configured the pool is one account, "default", on the inherited CODEX_HOME.
Runs and exhaustion are kept in a ledger: in memory for one process, in the
shared database for replicas (accounts are then known by NAME across them).

Setting form: `NAME=PATH` or `NAME:N=PATH` (N: runs at once on it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple, Protocol

from codex_image_server.engine.image_locator import codex_home
from codex_image_server.engine.readiness import Readiness, ReadinessCache
from codex_image_server.errors import Kind, ServiceError

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
            raise ValueError(
                f"account {entry!r}: expected NAME=PATH or NAME:N=PATH with a unique NAME"
            )
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


class AccountLoad(NamedTuple):
    in_use: int  # runs on it now (on every replica sharing the ledger)
    exhausted_until: float  # unix seconds; 0 when not exhausted (or its reset has passed)


class AccountLedger(Protocol):
    """Who runs how much on each account, and which are used up. One process
    keeps it in memory (`LocalLedger`); replicas sharing accounts keep it in
    their shared database, so a budget holds across them."""

    shared: bool

    def take(self, name: str, limit: int) -> object | None:
        """A run on the account if it has one free under `limit` and is not
        exhausted (a token for `give_back`), else None. Atomic."""

    def give_back(self, token: object) -> None: ...
    def mark_exhausted(self, name: str, until: float) -> None: ...
    def load(self, names: list[str]) -> Mapping[str, tuple[int, float]]:
        """Per name: (in_use, exhausted_until) as in `AccountLoad`."""


class LocalLedger:
    """The one-process ledger: counters and reset times under a lock."""

    shared = False

    def __init__(self):
        self._lock = threading.Lock()
        self._in_use: dict[str, int] = {}
        self._exhausted: dict[str, float] = {}

    def _until(self, name: str, now: float) -> float:
        until = self._exhausted.get(name, 0.0)
        if until and until <= now:
            del self._exhausted[name]  # its reset time has passed
            return 0.0
        return until

    def take(self, name: str, limit: int) -> object | None:
        with self._lock:
            if self._until(name, time.time()) or self._in_use.get(name, 0) >= limit:
                return None
            self._in_use[name] = self._in_use.get(name, 0) + 1
            return name

    def give_back(self, token: object) -> None:
        assert isinstance(token, str)  # the name `take` returned
        with self._lock:
            self._in_use[token] -= 1

    def mark_exhausted(self, name: str, until: float) -> None:
        with self._lock:
            self._exhausted[name] = max(self._exhausted.get(name, 0.0), until)

    def load(self, names: list[str]) -> dict[str, AccountLoad]:
        now = time.time()
        with self._lock:
            return {n: AccountLoad(self._in_use.get(n, 0), self._until(n, now)) for n in names}


class Account:
    def __init__(self, spec: AccountSpec, readiness: ReadinessCache):
        self.spec = spec
        self.name = spec.name
        self.readiness = readiness


@dataclasses.dataclass(frozen=True)
class HeldAccount:
    """One run's hold on an account, given back by `AccountPool.release`."""

    account: Account
    token: object


class AccountPool:
    def __init__(self, specs: list[AccountSpec], make_readiness, *, named: bool = True):
        self._accounts = [Account(s, make_readiness(s.home)) for s in specs]
        self._names = [a.name for a in self._accounts]
        self._named = named
        self.ledger: AccountLedger = LocalLedger()
        self._cond = threading.Condition()

    @classmethod
    def from_settings(
        cls, entries: tuple[str, ...], default_limit: int, make_readiness
    ) -> AccountPool:
        specs = parse(entries, default_limit)
        if specs:
            return cls(specs, make_readiness)
        return cls(
            [AccountSpec(DEFAULT_NAME, codex_home(dict(os.environ)), default_limit)],
            make_readiness,
            named=False,
        )

    def share(self, ledger: AccountLedger) -> bool:
        """Keep runs and exhaustion in `ledger`, before the first run: replicas
        that configure one account under the same NAME share its budget and
        its exhaustion. The implicit "default" account (no --account given)
        stays this process's own: it is whatever login each machine has."""
        if self._named:
            self.ledger = ledger
        return self._named

    @property
    def single(self) -> bool:
        return len(self._accounts) == 1

    # `cancelled` is only polled (is_set), which is safe for an asyncio.Event from this thread.
    def acquire(
        self, cancelled: threading.Event | asyncio.Event, skip: frozenset[str] = frozenset()
    ) -> HeldAccount:
        """The least busy ready account with a free run; waits while all are busy.
        Raises QUOTA_EXHAUSTED when every account is used up (or was tried)."""
        while True:
            if cancelled.is_set():
                raise ServiceError(Kind.CANCELLED, "REQUEST_CANCELED", "cancelled")
            # Probes may start codex, the ledger may be a database: outside the lock.
            logged_in = [
                a for a in self._accounts if a.name not in skip and a.readiness.get().ready
            ]
            loads = self._loads(logged_in)
            usable = [a for a in logged_in if not loads[a.name].exhausted_until]
            if not usable:
                raise self._all_exhausted(time.time())
            free = sorted(
                (a for a in usable if loads[a.name].in_use < a.spec.limit),
                key=lambda a: (loads[a.name].in_use / a.spec.limit, loads[a.name].in_use),
            )
            for account in free:
                # Another replica may have taken the last run since `load`.
                token = self.ledger.take(account.name, account.spec.limit)
                if token is not None:
                    return HeldAccount(account, token)
            with self._cond:
                self._cond.wait(
                    timeout=0.2
                )  # a local release wakes us; another replica's, the timeout

    def _loads(self, accounts: list[Account]) -> dict[str, AccountLoad]:
        return {
            name: AccountLoad(*load)
            for name, load in self.ledger.load([a.name for a in accounts]).items()
        }

    def _all_exhausted(self, now: float) -> ServiceError:
        loads = self._loads(self._accounts)
        until = [load.exhausted_until for load in loads.values() if load.exhausted_until]
        if not until:
            return ServiceError(
                Kind.FAILED_PRECONDITION,
                "CODEX_NOT_LOGGED_IN",
                "no Codex account is ready: check `codex login status` for each account",
            )
        reset = min(until)
        at = dt.datetime.fromtimestamp(reset, dt.UTC).isoformat().replace("+00:00", "Z")
        return ServiceError(
            Kind.RESOURCE_EXHAUSTED,
            "QUOTA_EXHAUSTED",
            f"every Codex account has used up its image generation quota; the first resets at {at}",
            metadata={"resets_at": at},
            retry_after_s=max(1, int(reset - now)),
        )

    def release(self, held: HeldAccount) -> None:
        self.ledger.give_back(held.token)
        with self._cond:
            self._cond.notify_all()

    def exhausted(self, held: HeldAccount, error: ServiceError) -> bool:
        """Codex said the account is used up: skip it until the reset codex
        reported (or a while, if it did not say). True when another account
        may take the run. One local account is not marked: the next request
        asks codex again (nothing else could take it anyway); a shared one is,
        so other replicas skip it too."""
        if self.single and not self.ledger.shared:
            return False
        until = 0.0
        if "resets_at" in error.metadata:
            try:
                until = dt.datetime.fromisoformat(
                    error.metadata["resets_at"].replace("Z", "+00:00")
                ).timestamp()
            except ValueError:
                until = 0.0
        if not until:
            until = time.time() + (error.retry_after_s or _EXHAUSTED_WITHOUT_RESET_S)
        self.ledger.mark_exhausted(held.account.name, until)
        with self._cond:
            self._cond.notify_all()
        return not self.single

    def snapshot(self, cached: bool = False) -> tuple | None:
        """(account, readiness, runs in use, exhausted until) of each account,
        cheap to compare. With `cached`: from the last probes, and only with a
        local ledger (a shared one is a database query), so it never blocks;
        None when it would."""
        if cached and self.ledger.shared:
            return None
        # Plain loops: Health asks this on every call, from the event loop.
        loads = self.ledger.load(self._names)
        rows = []
        for a in self._accounts:
            readiness = a.readiness.cached() if cached else a.readiness.get()
            if readiness is None:
                return None
            in_use, exhausted_until = loads[a.name]
            rows.append((a, readiness, in_use, exhausted_until))
        return tuple(rows)

    @staticmethod
    def states_of(rows: tuple) -> list[AccountState]:
        return [
            AccountState(a.name, a.spec.home, r, in_use, a.spec.limit, until)
            for a, r, in_use, until in rows
        ]

    def states(self) -> list[AccountState]:
        rows = self.snapshot()
        assert rows is not None  # only a cached snapshot can be missing
        return self.states_of(rows)

    def cached_readiness(self) -> Readiness | None:
        """Like `readiness` from the last probes only (None before every account's first)."""
        results = [a.readiness.cached() for a in self._accounts]
        known = [r for r in results if r is not None]
        if len(known) < len(results):
            return None
        return next((r for r in known if r.ready), known[0])

    def fresh_readiness(self) -> Readiness | None:
        """Like `readiness` when no account needs a probe, else None."""
        results = [a.readiness.fresh() for a in self._accounts]
        known = [r for r in results if r is not None]
        if len(known) < len(results):
            return None
        return next((r for r in known if r.ready), known[0])

    def readiness(self, fresh: bool = False) -> Readiness:
        """The server's readiness: the first account that can generate, else the first one's
        problem."""
        results = [a.readiness.get(fresh) for a in self._accounts]
        return next((r for r in results if r.ready), results[0])
