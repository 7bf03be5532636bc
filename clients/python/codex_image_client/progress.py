"""Live progress of one generation on a stream (stderr).

On a terminal: a block redrawn in place ten times a second, so the timer
ticks and a spinner turns while codex works even when no event arrives; a
header line says whether the request is queued (and how many are ahead),
generating or retrying. Elsewhere (pipes, CI logs): one plain line per change.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable
from typing import TextIO

from .events import Event, ImageReady, Progress

# How far a candidate is at each codex phase: codex reports no percentage,
# so the bar moves through the phases it does report, in their usual order.
_PHASE_SHARE = {
    "thread.started": 0.2,
    "turn.started": 0.3,
    "reasoning": 0.5,
    "agent_message": 0.7,
    "turn.completed": 0.9,
}
WIDTH = 24
TICK_S = 0.1
_SPIN_UNICODE = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_SPIN_ASCII = "|/-\\"


@dataclasses.dataclass
class _Candidate:
    share: float = 0.0
    label: str = "waiting"
    started: float | None = None  # local clock when it started
    finished: float | None = None  # local clock when its image arrived


class ProgressView:
    """Feed it the Generate stream's events (`update`) from any thread; call
    `close()` when the call is over (or use it as a context manager)."""

    def __init__(
        self,
        count: int,
        out: TextIO,
        *,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        tick_s: float = TICK_S,
    ):
        self._out = out
        self._tty = out.isatty() if tty is None else tty
        self._clock = clock
        self._t0 = clock()
        self._candidates = [_Candidate() for _ in range(max(count, 1))]
        self._status = "connecting"
        self._lock = threading.Lock()
        self._drawn = 0
        self._frame = 0
        encoding = (getattr(out, "encoding", None) or "").lower()
        self._spin = _SPIN_UNICODE if "utf" in encoding else _SPIN_ASCII
        self._stop = threading.Event()
        self._closed_ok = False
        self._ticker = None
        if self._tty:
            self._out.write("\x1b[?25l")  # hide the cursor while redrawing
            self._ticker = threading.Thread(
                target=self._tick, args=(tick_s,), name="progress", daemon=True
            )
            self._ticker.start()

    # -- what the caller tells it ------------------------------------------------

    def update(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, Progress):
                self._anchor(event.elapsed_ms)
                if event.candidate_index is None:
                    if event.stage == "QUEUED":
                        ahead = event.queue_position
                        self._set_status(
                            f"queued, {ahead} ahead" if ahead else "queued, next in line"
                        )
                    elif event.detail:
                        self._set_status(event.detail)
                    return
                self._set_status("generating")
                c = self._get(event.candidate_index)
                if event.stage == "CANDIDATE_STARTED":
                    c.started = c.started or self._clock()
                    self._set(event.candidate_index, max(c.share, 0.1), "started")
                elif event.stage == "CODEX_PHASE":
                    c.started = c.started or self._clock()
                    self._set(
                        event.candidate_index,
                        max(c.share, _PHASE_SHARE.get(event.phase, c.share)),
                        event.phase or event.detail or "working",
                    )
                elif event.stage == "CANDIDATE_FINISHED":
                    self._set(event.candidate_index, max(c.share, 0.95), "finished")
            elif isinstance(event, ImageReady):
                img = event.image
                self._get(img.index).finished = self._clock()
                self._set(img.index, 1.0, f"done {img.width}x{img.height}")

    def note(self, text: str) -> None:
        """A request-wide state in words, e.g. "queue full, retrying in 5s"."""
        with self._lock:
            self._set_status(text)

    def close(self, final: str = "") -> None:
        self._stop.set()
        if self._ticker:
            self._ticker.join()
        with self._lock:
            if final:
                self._set_status(final)
                self._closed_ok = True
            if self._tty:
                self._redraw()
                self._out.write("\x1b[?25h")
                self._out.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- state ---------------------------------------------------------------------

    def _anchor(self, elapsed_ms: int) -> None:
        # The server counts from the request's arrival; follow it, but never
        # let the shown timer run backwards.
        if elapsed_ms:
            self._t0 = min(self._t0, self._clock() - elapsed_ms / 1000)

    def _get(self, index: int) -> _Candidate:
        while index >= len(self._candidates):  # a server may report more than asked
            self._candidates.append(_Candidate())
        return self._candidates[index]

    def _set(self, index: int, share: float, label: str) -> None:
        c = self._get(index)
        if (c.share, c.label) == (share, label):
            return
        c.share, c.label = share, label
        if not self._tty:
            self._write_line(self._candidate_line(index, spin=False))

    def _set_status(self, text: str) -> None:
        if text == self._status:
            return
        self._status = text
        if not self._tty:
            self._write_line(f"{text} ({self._elapsed():.1f}s)")

    def _elapsed(self) -> float:
        return self._clock() - self._t0

    # -- drawing -------------------------------------------------------------------

    def _tick(self, interval: float) -> None:
        while not self._stop.wait(interval):
            with self._lock:
                self._frame += 1
                self._redraw()

    def _done_mark(self) -> str:
        return "✓" if self._spin is _SPIN_UNICODE else "*"

    def _spinner(self) -> str:
        return self._spin[self._frame % len(self._spin)]

    def _candidate_line(self, index: int, *, spin: bool) -> str:
        c = self._candidates[index]
        filled = int(round(c.share * WIDTH))
        if c.finished is not None:
            mark, seconds = self._done_mark(), c.finished - self._t0
        else:
            mark, seconds = (self._spinner() if spin and c.started else " "), self._elapsed()
        meter = "#" * filled + "-" * (WIDTH - filled)
        bar = f"candidate {index + 1} [{meter}] {int(c.share * 100):3d}% {c.label}"
        return f"{mark} {bar} ({seconds:.1f}s)" if spin else f"{bar} ({seconds:.1f}s)"

    def _lines(self) -> list[str]:
        running = sum(1 for c in self._candidates if c.started and c.finished is None)
        done = sum(1 for c in self._candidates if c.finished is not None)
        status = self._status
        if status == "generating":
            status = f"generating: {running} running, {done} of {len(self._candidates)} done"
        mark = self._done_mark() if self._closed_ok else self._spinner()
        return [
            f"{mark} {status} ({self._elapsed():.1f}s)",
            *(self._candidate_line(i, spin=True) for i in range(len(self._candidates))),
        ]

    def _redraw(self) -> None:
        columns = max(_columns(self._out) - 1, 20)
        parts = [f"\x1b[{self._drawn}F"] if self._drawn else []  # back to the block's first line
        lines = self._lines()
        parts += [
            f"\x1b[2K{line[:columns]}\n" for line in lines
        ]  # never wrap: it breaks the redraw
        self._drawn = len(lines)
        self._out.write("".join(parts))
        self._out.flush()

    def _write_line(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()


def _columns(out: TextIO) -> int:
    try:
        return os.get_terminal_size(out.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 100


# The name the CLI used before the live view; kept for library users.
Bars = ProgressView
