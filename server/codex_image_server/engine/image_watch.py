"""Noticing, while codex still runs, that its image is final.

After the image tool call, codex 0.169.0 asks the model for one more turn (a
closing reply): seconds and tokens for nothing the caller needs. Measured
(tests/upstream_standin/FINDINGS.md, section 8): codex writes the image file
in place, in pieces (a 25 MB file is seen at 0, 4 MB, 6 MB, ...), so the
file alone is never proof; the rollout's `image_gen.generation` item with
status "completed" is appended only after the file is whole, and is itself
written in pieces, so only a complete line (ending in a newline) counts.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Callable

from .image_locator import rollout_path

POLL_S = 0.02
_MARKER = b'"image_gen.generation"'


def _final_path(line: bytes) -> str | None:
    """The savedPath of a completed image item in this rollout line, if any."""
    if _MARKER not in line or b'"completed"' not in line:
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    payload = record.get("payload") if isinstance(record, dict) else None
    item = payload.get("item") if isinstance(payload, dict) else None
    if isinstance(item, dict) and item.get("kind") == "image_gen.generation" \
            and item.get("status") == "completed" and item.get("savedPath"):
        return str(item["savedPath"])
    return None


class RolloutWatch:
    """Tails one thread's rollout on its own thread; calls `on_final(saved_path)`
    once, when the completed image item's line is whole."""

    def __init__(self, home: Path, thread_id: str, on_final: Callable[[str], None]):
        self._home = home
        self._thread_id = thread_id
        self._on_final = on_final
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rollout-{thread_id[:8]}", daemon=True)

    def start(self) -> "RolloutWatch":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)

    def _run(self) -> None:
        path: Path | None = None
        offset, partial = 0, b""
        while not self._stop.wait(POLL_S):
            if path is None:
                path = rollout_path(self._home, self._thread_id)
                if path is None:
                    continue
            try:
                with open(path, "rb") as f:
                    f.seek(offset)
                    data = f.read()
            except OSError:
                continue
            offset += len(data)
            lines = (partial + data).split(b"\n")
            partial = lines.pop()  # not yet ended by a newline: still being written
            for line in lines:
                saved = _final_path(line)
                if saved and Path(saved).is_file():
                    self._on_final(saved)
                    return
