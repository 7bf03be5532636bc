"""Per-key limits: requests at once and images per UTC day. A request is
admitted and recorded under one lock, so concurrent requests of one key
cannot both slip under its daily limit (running requests count with the
images they asked for)."""
from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from typing import Callable

from .errors import Kind, ServiceError
from .history import History
from .keys import ApiKey


@dataclasses.dataclass(frozen=True)
class KeyUsage:
    key_name: str
    images_today: int
    images_per_day: int
    concurrent: int
    max_concurrent: int


def day_start_ms(now: dt.datetime | None = None) -> int:
    now = now or dt.datetime.now(dt.timezone.utc)
    return int(now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp() * 1000)


def seconds_to_next_day(now: dt.datetime | None = None) -> int:
    now = now or dt.datetime.now(dt.timezone.utc)
    tomorrow = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((tomorrow - now).total_seconds()) + 1)


class KeyLimits:
    def __init__(self, history: History):
        self._history = history
        self._lock = threading.Lock()
        self._running: dict[str, int] = {}

    def admit(self, key: ApiKey, count: int, record: Callable[[], int]) -> int:
        """Check the key's limits, then `record()` the request; returns its row.
        Raises RESOURCE_EXHAUSTED (with RetryInfo) when over a limit."""
        with self._lock:
            running = self._running.get(key.name, 0)
            if key.max_concurrent and running >= key.max_concurrent:
                raise ServiceError(Kind.RESOURCE_EXHAUSTED, "KEY_CONCURRENCY_LIMIT",
                                   f"key {key.name!r} already has {running} requests running, its limit; "
                                   "try again when one ends", metadata={"key_name": key.name}, retry_after_s=5)
            if key.images_per_day:
                used = self._history.images_since(key.name, day_start_ms())
                if used + count > key.images_per_day:
                    retry = seconds_to_next_day()
                    raise ServiceError(Kind.RESOURCE_EXHAUSTED, "KEY_DAILY_LIMIT",
                                       f"key {key.name!r} has used {used} of its {key.images_per_day} images "
                                       f"today (UTC) and this request asks for {count}; the count resets at "
                                       "midnight UTC", metadata={"key_name": key.name, "images_today": str(used)},
                                       retry_after_s=retry)
            seq = record()
            self._running[key.name] = running + 1
            return seq

    def release(self, key: ApiKey) -> None:
        with self._lock:
            left = self._running.get(key.name, 1) - 1
            if left > 0:
                self._running[key.name] = left
            else:
                self._running.pop(key.name, None)

    def usage(self, key: ApiKey) -> KeyUsage:
        with self._lock:
            running = self._running.get(key.name, 0)
        return KeyUsage(key.name, self._history.images_since(key.name, day_start_ms()), key.images_per_day,
                        running, key.max_concurrent)
