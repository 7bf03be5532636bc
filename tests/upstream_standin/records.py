"""Thread-safe record of everything the stand-in received and returned."""

from __future__ import annotations

import threading
import time


class Recorder:
    """Append-only list of dict records, queryable while the server runs.

    Each record has at least `seq`, `kind` and `time`. Kinds:
    `responses`, `images.generations`, `images.edits`, `models`, `other`
    (one per HTTP request) and `client_closed` (codex dropped a connection
    while a response was still being produced).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._items: list[dict] = []

    def add(self, kind: str, **fields) -> dict:
        with self._lock:
            record = {"seq": len(self._items), "kind": kind, "time": time.time(), **fields}
            self._items.append(record)
            self._changed.notify_all()
            return record

    def update(self, record: dict, **fields) -> None:
        with self._lock:
            record.update(fields)
            self._changed.notify_all()

    def all(self, kind: str | None = None) -> list[dict]:
        with self._lock:
            return [r for r in self._items if kind is None or r["kind"] == kind]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def wait_for(self, predicate, timeout: float):
        """Wait (bounded) until predicate(records) is truthy; return its value.

        Raises TimeoutError with a summary of what did arrive, so a failing
        test says what the upstream saw.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                value = predicate(list(self._items))
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    kinds = [r["kind"] for r in self._items]
                    raise TimeoutError(f"stand-in condition not met in {timeout}s; saw {kinds}")
                self._changed.wait(min(left, 0.1))
