"""Retention: stored images older than the maximum age, and the oldest ones
while the store holds more than the maximum bytes, are deleted by a
background sweeper. Request records follow the same rules: those older
than the maximum age, and those older than the oldest image left after the
byte cap, go too; but never a record of the current UTC day (a key's daily
limit counts those) nor a running one. Finished operations are kept as long
as their images: those that ended before the same cutoff go.

Objects no record names (an upload whose replica died, or whose database
went away, before the record was written; a delete whose object store went
away after the record went) are deleted once older than `unrecorded_age_s`:
long enough that no upload still on its way to its record is taken."""

from __future__ import annotations

import threading
import time
from pathlib import PurePath

from codex_image_server.errors import ServiceError
from codex_image_server.request.imaging import EXTENSION_BY_MIME
from codex_image_server.runtime.logs import log
from codex_image_server.store import OutputStore
from codex_image_server.store.output_store import is_valid_id
from codex_image_server.team.metrics import Metrics

_BATCH = 200
_DAY_MS = 86_400_000


class Retention:
    def __init__(
        self,
        store: OutputStore,
        metrics: Metrics,
        max_age_s: int,
        max_bytes: int,
        unrecorded_age_s: int = 0,
    ):
        self._store = store
        self._metrics = metrics
        self.max_age_s = max_age_s
        self.max_bytes = max_bytes
        self.unrecorded_age_s = unrecorded_age_s

    @property
    def enabled(self) -> bool:
        return bool(self.max_age_s or self.max_bytes or self.unrecorded_age_s)

    def _delete(self, image_id: str, rule: str) -> int:
        try:
            record = self._store.delete(image_id)
        except ServiceError:
            return 0  # deleted meanwhile (DeleteImage)
        self._metrics.retention_deleted.labels(rule).inc()
        self._metrics.retention_bytes.labels(rule).inc(record.byte_size)
        return record.byte_size

    def sweep(self, now_ms: int | None = None) -> dict[str, int]:
        """One pass; images strictly older than the maximum age go, then the
        oldest until the total is at most the maximum bytes."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        deleted = {"age": 0, "size": 0}
        if self.max_age_s:
            cutoff = now_ms - self.max_age_s * 1000
            while True:
                old = [
                    i
                    for i in self._store.metadata.oldest_images(_BATCH)
                    if i.created_unix_ms < cutoff
                ]
                for image in old:
                    self._delete(image.id, "age")
                deleted["age"] += len(old)
                if len(old) < _BATCH:
                    break
        if self.max_bytes:
            _, total = self._store.totals()
            while total > self.max_bytes:
                oldest = self._store.metadata.oldest_images(_BATCH)
                if not oldest:
                    break
                for image in oldest:
                    if total <= self.max_bytes:
                        break
                    total -= self._delete(image.id, "size") or image.byte_size
                    deleted["size"] += 1
        deleted["requests"] = self._sweep_requests(now_ms, deleted["size"] > 0)
        deleted["unrecorded"] = self._sweep_unrecorded(now_ms) if self.unrecorded_age_s else 0
        if any(deleted.values()):
            log(
                "retention.swept",
                by_age=deleted["age"],
                by_size=deleted["size"],
                requests=deleted["requests"],
                unrecorded=deleted["unrecorded"],
            )
        return deleted

    def _sweep_unrecorded(self, now_ms: int) -> int:
        """Objects older than `unrecorded_age_s` whose id no record holds."""
        blobs = self._store.blobs
        deleted, batch = 0, dict[str, str]()  # image id -> its object's name

        def flush() -> int:
            known = self._store.metadata.recorded_ids(list(batch))
            for image_id, name in batch.items():
                if image_id not in known:
                    blobs.delete(name)
            return len(batch) - len(known)

        extensions = {f".{ext}" for ext in EXTENSION_BY_MIME.values()}
        for name in blobs.names_before(now_ms / 1000 - self.unrecorded_age_s):
            image_id, extension = PurePath(name).stem, PurePath(name).suffix
            if not is_valid_id(image_id) or extension not in extensions:
                continue  # not a name the store makes for an image: not ours to delete
            batch[image_id] = name
            if len(batch) >= _BATCH:
                deleted += flush()
                batch = {}
        if batch:
            deleted += flush()
        return deleted

    def _sweep_requests(self, now_ms: int, shrunk: bool) -> int:
        cutoff = None
        if self.max_age_s:
            cutoff = now_ms - self.max_age_s * 1000
        if shrunk:
            oldest = self._store.metadata.oldest_images(1)
            if oldest:
                cutoff = max(cutoff or 0, oldest[0].created_unix_ms)
        if cutoff is None:
            return 0
        # An operation's images were made before it ended: ended before the cutoff, they are gone.
        self._store.metadata.delete_finished_operations_before(cutoff)
        today = now_ms - now_ms % _DAY_MS  # quotas count from the UTC day's start
        return self._store.metadata.delete_requests_before(min(cutoff, today))


class Sweeper:
    """Runs `Retention.sweep` at start and then every interval, until stopped."""

    def __init__(self, retention: Retention, interval_s: float):
        self._retention = retention
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="retention", daemon=True)

    def start(self) -> None:
        if self._retention.enabled:
            self._thread.start()

    def _loop(self) -> None:
        while True:
            try:
                self._retention.sweep()
            except Exception as exc:  # noqa: BLE001 - a failed pass must not end the sweeper
                log("retention.failed", level="error", error_type=type(exc).__name__)
            if self._stop.wait(self._interval):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
