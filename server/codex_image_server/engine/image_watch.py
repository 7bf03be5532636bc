"""Noticing, while codex still runs, that its image is final.

After the image tool call, codex (0.169.0-0.171.0) asks the model for one more turn (a
closing reply): seconds and tokens for nothing the caller needs. Measured
(tests/upstream_standin/FINDINGS.md, section 8): codex writes the image file
in place, in pieces (a 25 MB file is seen at 0, 4 MB, 6 MB, ...), so the
file alone is never proof; the rollout's `image_gen.generation` item with
status "completed" is appended only after the file is whole, and is itself
written in pieces, so only a complete line (ending in a newline) counts.

That line carries the whole image as base64 (33 MB for a 25 MB image): it is
never parsed as a whole, only the few fields needed are read out of it. Every
shape image_shapes.py knows counts: the extension item (0.169.0-0.171.0), the
legacy `image_generation_end` / `image_generation_call` (a `generating` status
with the whole image in `result` counts), app-server v2's `imageGeneration`.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

from codex_image_server.engine.image_locator import rollout_path, todays_rollout_path
from codex_image_server.engine.image_shapes import DONE, LINE_MARKERS

POLL_S = 0.02
# Until the rollout is found, each poll lists only today's session folder;
# the walk of every day's folder (a session begun before midnight) runs this
# often: at 20 ms it was most of the watch's cost with a dozen runs.
_FULL_LOOK_S = 0.5
_MARKERS = tuple(marker for marker, _, _ in LINE_MARKERS)
_FIELD_WINDOW = 256 * 1024  # a path, a status or a revised prompt is far shorter


@dataclasses.dataclass(frozen=True)
class FinalImage:
    saved_path: str
    revised_prompt: str
    data: bytes = b""  # a shape that gives only base64 `result` (legacy)


def _string_field(line: bytes, name: str, window: int | None = _FIELD_WINDOW) -> str:
    """The JSON string value of `"name":` in `line`, without parsing the line."""
    key = b'"' + name.encode() + b'":'
    at = line.find(key)
    if at < 0:
        return ""
    start = at + len(key)
    end = None if window is None else start + window
    try:
        value, _ = json.JSONDecoder().raw_decode(
            line[start:end].decode("utf-8", "replace").lstrip()
        )
    except ValueError:
        return ""
    return value if isinstance(value, str) else ""


def _has_marker(data, start: int, end: int) -> bool:
    return any(data.find(marker, start, end) >= 0 for marker in _MARKERS)


def final_image(line: bytes) -> FinalImage | None:
    """The completed image item in this (complete) rollout line, if any."""
    for marker, path_name, prompt_name in LINE_MARKERS:
        if marker not in line:
            continue
        if _string_field(line, "status") not in DONE:
            return None
        saved = _string_field(line, path_name)
        if saved:
            return FinalImage(saved, _string_field(line, prompt_name))
        # No path: the bytes are in `result` (parsed alone, however long).
        try:
            data = base64.b64decode(_string_field(line, "result", window=None), validate=False)
        except (binascii.Error, ValueError):
            return None
        return FinalImage("", _string_field(line, prompt_name), data) if data else None
    return None


class RolloutWatch:
    """Tails one thread's rollout on its own thread; calls `on_final(FinalImage)`
    once, when the completed image item's line is whole."""

    def __init__(self, home: Path, thread_id: str, on_final: Callable[[FinalImage], None]):
        self._home = home
        self._thread_id = thread_id
        self._on_final = on_final
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"rollout-{thread_id[:8]}", daemon=True
        )

    def start(self) -> RolloutWatch:
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
                if _has_marker(pending, 0, end):
                    found = final_image(bytes(pending[:end]))
                del pending[: end + 1]
                search_from = 0
                if found and (found.data or Path(found.saved_path).is_file()):
                    self._on_final(found)
                    return
