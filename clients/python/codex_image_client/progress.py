"""Plain-text progress bars, one per candidate, on a stream (stderr).

On a terminal the block of bars is redrawn in place; otherwise each change is
one new line, so logs and CI output stay readable."""
from __future__ import annotations

from typing import TextIO

from .events import Event, ImageReady, Progress

# How far a candidate is at each codex phase: codex reports no percentage,
# so the bar moves through the phases it does report, in their usual order.
_PHASE_SHARE = {"thread.started": 0.2, "turn.started": 0.3, "reasoning": 0.5,
                "agent_message": 0.7, "turn.completed": 0.9}
WIDTH = 24


class Bars:
    def __init__(self, count: int, out: TextIO):
        self._out = out
        self._tty = out.isatty()
        self._state = [(0.0, "waiting") for _ in range(count)]
        self._drawn = 0
        self._elapsed_ms = 0

    def update(self, event: Event) -> None:
        if isinstance(event, Progress):
            self._elapsed_ms = event.elapsed_ms
            if event.candidate_index is None:
                self._note(f"queued ({event.queue_position} ahead)" if event.stage == "QUEUED" else event.detail)
                return
            share, _ = self._get(event.candidate_index)
            if event.stage == "CANDIDATE_STARTED":
                self._set(event.candidate_index, max(share, 0.1), "started")
            elif event.stage == "CODEX_PHASE":
                self._set(event.candidate_index, max(share, _PHASE_SHARE.get(event.phase, share)), event.phase)
            elif event.stage == "CANDIDATE_FINISHED":
                self._set(event.candidate_index, 1.0, "finished")
        elif isinstance(event, ImageReady):
            img = event.image
            self._set(img.index, 1.0, f"done {img.width}x{img.height}")

    def _get(self, index: int):
        while index >= len(self._state):  # a server may report more than asked
            self._state.append((0.0, "waiting"))
        return self._state[index]

    def _set(self, index: int, share: float, label: str) -> None:
        if self._get(index) == (share, label):
            return
        self._state[index] = (share, label)
        if self._tty:
            self._redraw()
        else:
            self._out.write(self._line(index) + "\n")
            self._out.flush()

    def _note(self, text: str) -> None:
        if not self._tty:
            self._out.write(text + "\n")
            self._out.flush()

    def _line(self, index: int) -> str:
        share, label = self._state[index]
        filled = int(round(share * WIDTH))
        return (f"candidate {index + 1} [{'#' * filled}{'-' * (WIDTH - filled)}] "
                f"{int(share * 100):3d}% {label} ({self._elapsed_ms / 1000:.1f}s)")

    def _redraw(self) -> None:
        if self._drawn:
            self._out.write(f"\x1b[{self._drawn}F")  # back to the first bar
        for i in range(len(self._state)):
            self._out.write("\x1b[2K" + self._line(i) + "\n")
        self._drawn = len(self._state)
        self._out.flush()
