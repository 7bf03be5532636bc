"""Per-key limits: requests at once and images per UTC day. They are checked
in the same step that records the request, by the store that keeps the
history (`Admission`): two requests of one key cannot both slip under a limit,
whether they reach one process or several replicas sharing PostgreSQL
(running requests count with the images they asked for)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

from codex_image_server.errors import Kind, ServiceError
from codex_image_server.store.records import Admission, KeyLoad
from codex_image_server.team.history import History
from codex_image_server.team.keys import ApiKey


@dataclasses.dataclass(frozen=True)
class KeyUsage:
    key_name: str
    images_today: int
    images_per_day: int
    concurrent: int
    max_concurrent: int


def day_start_ms(now: dt.datetime | None = None) -> int:
    now = now or dt.datetime.now(dt.UTC)
    return int(now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp() * 1000)


def seconds_to_next_day(now: dt.datetime | None = None) -> int:
    now = now or dt.datetime.now(dt.UTC)
    tomorrow = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((tomorrow - now).total_seconds()) + 1)


class KeyLimits:
    def __init__(self, history: History):
        self._history = history

    def admit(self, key: ApiKey, count: int, record: Callable[[Admission | None], int]) -> int:
        """`record(admission)` records the request if the key's limits let it
        in; returns its row. Raises RESOURCE_EXHAUSTED (with RetryInfo) when
        over a limit. A request ends (its record's outcome) to free its slot."""
        if not key.max_concurrent and not key.images_per_day:
            return record(None)
        return record(Admission(day_start_ms(), lambda load: _check(key, count, load)))

    def usage(self, key: ApiKey) -> KeyUsage:
        load = self._history.key_load(key.name, day_start_ms())
        return KeyUsage(key.name, load.images, key.images_per_day, load.running, key.max_concurrent)


def _check(key: ApiKey, count: int, load: KeyLoad) -> None:
    if key.max_concurrent and load.running >= key.max_concurrent:
        raise ServiceError(
            Kind.RESOURCE_EXHAUSTED,
            "KEY_CONCURRENCY_LIMIT",
            f"key {key.name!r} already has {load.running} requests running, its limit; "
            "try again when one ends",
            metadata={"key_name": key.name},
            retry_after_s=5,
        )
    if key.images_per_day and load.images + count > key.images_per_day:
        raise ServiceError(
            Kind.RESOURCE_EXHAUSTED,
            "KEY_DAILY_LIMIT",
            f"key {key.name!r} has used {load.images} of its {key.images_per_day} images "
            f"today (UTC) and this request asks for {count}; the count resets at midnight UTC",
            metadata={"key_name": key.name, "images_today": str(load.images)},
            retry_after_s=seconds_to_next_day(),
        )
