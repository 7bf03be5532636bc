"""The supervisor's backoff, on real processes (no cluster needed): each
quick death doubles the wait before the next start, up to the cap; a clean
stop of the supervisor restarts nothing; the dead member's process group
goes with it (a SIGKILLed PostgreSQL leaves backends behind otherwise)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from codex_image_cluster import supervisor as sup

from tests.support import procs


class SleepyMember:
    """A member like the cluster's: `proc`, and `start()` that spawns it in a session of its own
    (a child in its group stands for PostgreSQL's backends)."""

    def __init__(self):
        self.proc: subprocess.Popen | None = None
        self.children: list[int] = []

    def start(self) -> SleepyMember:
        code = (
            "import subprocess, sys, time\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
            "print(child.pid, flush=True)\n"
            "time.sleep(600)\n"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True
        )
        self.children.append(int(self.proc.stdout.readline()))
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def test_quick_deaths_double_the_backoff_and_the_group_goes(monkeypatch):
    monkeypatch.setattr(sup, "FIRST_BACKOFF_S", 0.2)
    monkeypatch.setattr(sup, "MAX_BACKOFF_S", 0.8)
    member = SleepyMember().start()
    lines: list[dict] = []
    supervisor = sup.Supervisor([("sleepy", member)], emit=lines.append, poll_s=0.05).start()
    try:
        for n in range(1, 5):
            old = member.proc
            os.kill(old.pid, signal.SIGKILL)
            assert procs.wait_until(lambda n=n: len(lines) >= n, 30), lines
            assert lines[-1]["old_pid"] == old.pid and lines[-1]["exit"] == -signal.SIGKILL
            # Its group went with it: the child it had started is gone too.
            assert procs.wait_until(lambda n=n: not procs.exists(member.children[n - 1]), 10)
        assert [line["backoff_s"] for line in lines] == [0.2, 0.4, 0.8, 0.8]
        assert all(
            line["outcome"] == "started" and procs.running(line["pid"]) is (line is lines[-1])
            for line in lines
        )
    finally:
        supervisor.stop()
        last = member.proc
        member.stop()
    # Stopped: a member that dies now stays dead.
    assert last.poll() is not None and len(lines) == 4
    for pid in member.children:
        if procs.exists(pid):
            os.kill(pid, signal.SIGKILL)
