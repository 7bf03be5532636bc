"""A run whose process group is already gone has nothing to stop: every
request ends by stopping its runs, and each stop of a finished run used to
start a thread that scanned every process's environ for strays."""

from __future__ import annotations

import os
import threading

from codex_image_server.engine.process_group import ProcessGroup


def _stoppers(pid: int) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"stop-pg-{pid}"]


def test_stopping_a_finished_run_starts_no_stopper(tmp_path):
    group = ProcessGroup(["sh", "-c", "echo made"], cwd=str(tmp_path), env=dict(os.environ))
    assert group.proc.stdout.read() == b"made\n"
    group.finish(grace=1.0)
    group.stop_async(grace=1.0)
    assert not group.stop_requested
    assert _stoppers(group.pid) == []


def test_stopping_a_running_run_still_stops_it(tmp_path):
    group = ProcessGroup(["sleep", "30"], cwd=str(tmp_path), env=dict(os.environ))
    group.stop_async(grace=1.0)
    assert group.stop_requested
    group.finish(grace=1.0)
    assert group.proc.returncode == -15
    assert _stoppers(group.pid) == []
