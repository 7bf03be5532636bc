"""Restart on failure, like systemd's Restart=on-failure: every process the
launcher started (replicas, PostgreSQL, the object store, HAProxy) that dies
is started again, with a backoff that doubles on each quick death and starts
over once a process has stayed up for a while. Each restart is one JSON line.

A member is anything with `proc` (a subprocess.Popen, or None while it is
being started) and `start()`. Before a member is started again, what is left
of its process group is killed (by the group id of the process we started,
never by a program name): a SIGKILLed PostgreSQL leaves its backends behind,
and a new postmaster will not start beside them. A replica's codex runs live
in sessions of their own, so they are not in that group: the restarted
replica finds them by its run records and kills them itself.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

POLL_S = 0.2
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 10.0
STABLE_S = 30.0  # up this long: the next death starts the backoff over


def _json_line(stream=None) -> Callable[[dict], None]:
    def emit(fields: dict) -> None:
        print(
            json.dumps({"ts": round(time.time(), 3), **fields}),
            file=stream or sys.stdout,
            flush=True,
        )

    return emit


class _Watched:
    def __init__(self, name: str, member):
        self.name = name
        self.member = member
        self.backoff = FIRST_BACKOFF_S
        self.started_at = time.monotonic()
        self.restarts = 0
        self.restarting = False


class Supervisor:
    def __init__(
        self,
        members: list[tuple[str, object]],
        emit: Callable[[dict], None] | None = None,
        poll_s: float = POLL_S,
    ):
        self._watched = [_Watched(name, member) for name, member in members]
        self._emit = emit or _json_line()
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cluster-supervisor", daemon=True)
        self.events: list[dict] = []  # every restart line, for whoever started us
        self._lock = threading.Lock()

    def start(self) -> Supervisor:
        self._thread.start()
        return self

    def stop(self) -> None:
        """No restart after this returns (a restart under way finishes first)."""
        self._stop.set()
        self._thread.join(timeout=120)
        for w in self._watched:
            while w.restarting:
                time.sleep(0.05)

    def restarts(self, name: str) -> int:
        return next(w.restarts for w in self._watched if w.name == name)

    def _loop(self) -> None:
        while not self._stop.wait(self._poll_s):
            for w in self._watched:
                proc = getattr(w.member, "proc", None)
                if w.restarting or proc is None or proc.poll() is None:
                    continue
                w.restarting = True
                threading.Thread(
                    target=self._restart, args=(w, proc), name=f"restart-{w.name}", daemon=True
                ).start()

    def _restart(self, w: _Watched, dead) -> None:
        try:
            if time.monotonic() - w.started_at >= STABLE_S:
                w.backoff = FIRST_BACKOFF_S
            delay = w.backoff
            w.backoff = min(MAX_BACKOFF_S, w.backoff * 2)
            _kill_group(dead.pid)
            if self._stop.wait(delay):
                return
            line = {
                "event": "cluster.restart",
                "process": w.name,
                "old_pid": dead.pid,
                "exit": dead.returncode,
                "backoff_s": delay,
                "restart": w.restarts + 1,
            }
            try:
                w.member.start()
            except Exception as exc:  # noqa: BLE001 - tried again after the next backoff
                line.update(outcome="failed", error=f"{type(exc).__name__}: {str(exc)[:200]}")
            else:
                line.update(outcome="started", pid=w.member.proc.pid)
            w.restarts += 1
            w.started_at = time.monotonic()
            with self._lock:
                self.events.append(line)
            self._emit(line)
        finally:
            w.restarting = False


def _kill_group(pgid: int) -> None:
    """What is left of a dead member's process group (it led a session of its own)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
