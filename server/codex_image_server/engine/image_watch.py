"""Noticing, while codex still runs, that its image is final.

After the image tool call, codex 0.169.0 asks the model for one more turn (a
closing reply): seconds and tokens for nothing the caller needs. Measured
(tests/upstream_standin/FINDINGS.md, section 8): codex writes the image file
in place, in pieces (a 25 MB file is seen at 0, 4 MB, 6 MB, ...), so the
file alone is never proof; the rollout's `image_gen.generation` item with
status "completed" is appended only after the file is whole, and is itself
written in pieces, so only a complete line (ending in a newline) counts.

That line carries the whole image as base64 (33 MB for a 25 MB image): it is
never parsed as a whole, only the few fields needed are read out of it.
"""
from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path
from typing import Callable

from .image_locator import rollout_path, todays_rollout_path

POLL_S = 0.02
# Until the rollout is found, each poll lists only today's session folder;
# the walk of every day's folder (a session begun before midnight) runs this
# often: at 20 ms it was most of the watch's cost with a dozen runs.
_FULL_LOOK_S = 0.5
_MARKER = b'"kind":"image_gen.generation"'
_COMPLETED = b'"status":"completed"'
_FIELD_WINDOW = 256 * 1024  # a path or a revised prompt is far shorter


@dataclasses.dataclass(frozen=True)
class FinalImage:
    saved_path: str
    revised_prompt: str


def _string_field(line: bytes, name: str) -> str:
    """The JSON string value of `"name":` in `line`, without parsing the line."""
    key = b'"' + name.encode() + b'":'
    at = line.find(key)
    if at < 0:
        return ""
    start = at + len(key)
    try:
        value, _ = json.JSONDecoder().raw_decode(line[start:start + _FIELD_WINDOW].decode("utf-8", "replace"))
    except ValueError:
        return ""
    return value if isinstance(value, str) else ""


def final_image(line: bytes) -> FinalImage | None:
    """The completed image item in this (complete) rollout line, if any."""
    if _MARKER not in line or _COMPLETED not in line:
        return None
    saved = _string_field(line, "savedPath")
    return FinalImage(saved, _string_field(line, "revisedPrompt")) if saved else None


class RolloutWatch:
    """Tails one thread's rollout on its own thread; calls `on_final(FinalImage)`
    once, when the completed image item's line is whole."""

    def __init__(self, home: Path, thread_id: str, on_final: Callable[[FinalImage], None]):
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
        offset = 0
        pending = bytearray()  # the line being written: appended to, never copied whole
        full_look = 0.0
        while not self._stop.wait(POLL_S):
            if path is None:
                if time.monotonic() >= full_look:
                    path = rollout_path(self._home, self._thread_id)
                    full_look = time.monotonic() + _FULL_LOOK_S
                else:
                    path = todays_rollout_path(self._home, self._thread_id, time.time())
                if path is None:
                    continue
            try:
                with open(path, "rb") as f:
                    f.seek(offset)
                    data = f.read()
            except OSError:
                continue
            offset += len(data)
            search_from = len(pending)
            pending += data
            while (end := pending.find(b"\n", search_from)) >= 0:
                found = None
                if pending.find(_MARKER, 0, end) >= 0:
                    found = final_image(bytes(pending[:end]))
                del pending[:end + 1]
                search_from = 0
                if found and Path(found.saved_path).is_file():
                    self._on_final(found)
                    return
