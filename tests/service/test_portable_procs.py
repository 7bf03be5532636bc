"""The process layer's portable path (psutil and the POSIX calls Linux and
macOS both have, no subreaper), run here on Linux: it answers as /proc does,
and a server using it stops every process of a cancelled run, including a
grandchild, and sweeps what a killed
server left. Without a subreaper, what is orphaned goes to init, which reaps
it on macOS (launchd); this machine's init does not, so here "stopped"
means no process of the run still runs (a zombie whose parent is init
is left to init)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from codex_image_server.engine.os_procs import PORTABLE_ENV, LinuxProcs, PortableProcs
from codeximage.v1 import image_service_pb2 as pb

from tests.support import procs
from tests.support.server_proc import start_server

PORTABLE = {PORTABLE_ENV: "1"}
TREE = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(child.pid, flush=True)
time.sleep(60)
"""


@pytest.fixture
def tree():
    """A process leading its own session and group, with a child in the
    group, both carrying a run id in their environment."""
    env = dict(os.environ, CODEX_IMAGE_SERVER_RUN_ID="run-portable-1")
    leader = subprocess.Popen(
        [sys.executable, "-c", TREE],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    child = int(leader.stdout.readline())
    # Popen returns once exec is past its point of no return (the close-on-exec
    # pipe closes), a moment before the kernel sets up the new environment:
    # /proc/PID/environ reads empty until then. Both started means both readable.
    assert procs.wait_until(
        lambda: all(
            LinuxProcs().environ_value(pid, "CODEX_IMAGE_SERVER_RUN_ID")
            for pid in (leader.pid, child)
        ),
        timeout=10,
    )
    yield leader, child
    for pid in (leader.pid, child):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    leader.wait()


def test_portable_answers_match_proc(tree):
    leader, child = tree
    linux, portable = LinuxProcs(), PortableProcs()
    assert {leader.pid, child} <= set(portable.pids()) and {leader.pid, child} <= set(linux.pids())
    for pid in (leader.pid, child, os.getpid()):
        a, b = linux.stat(pid), portable.stat(pid)
        assert (a.ppid, a.pgid) == (b.ppid, b.pgid), (pid, a, b)
        assert b.start_time == portable.stat(pid).start_time  # stable for one process
    assert portable.stat(child).pgid == leader.pid and portable.stat(child).ppid == leader.pid
    for pid in (leader.pid, child):
        assert (
            portable.environ_value(pid, "CODEX_IMAGE_SERVER_RUN_ID")
            == "run-portable-1"
            == linux.environ_value(pid, "CODEX_IMAGE_SERVER_RUN_ID")
        )
        assert portable.environ_value(pid, "NO_SUCH_VARIABLE") is None
    assert portable.become_subreaper() is False
    # The leader dies: a zombie of ours, seen as one by both, until the
    # group reap takes it.
    os.kill(leader.pid, signal.SIGKILL)
    assert procs.wait_until(lambda: portable.stat(leader.pid).state == "Z", timeout=5)
    assert linux.stat(leader.pid).state == "Z" and portable.any_zombie_child()
    portable.reap_group(leader.pid)
    assert portable.stat(leader.pid) is None and linux.stat(leader.pid) is None
    leader.returncode = -9  # reaped above, not through Popen
    assert portable.stat(424242424) is None and linux.stat(424242424) is None


def not_running(runs) -> bool:
    return not any(procs.running(p) for r in runs for p in procs.run_pids(r))


def test_server_on_the_portable_path_stops_every_process_of_a_cancelled_run(tmp_path):
    with start_server(tmp_path, env=PORTABLE, args=["--kill-grace-ms", "500"]) as srv:
        started = [r for r in srv.log_records() if r.get("event") == "server.started"]
        assert started and started[0]["subreaper"] is False  # the portable path, really
        call = srv.stub().Generate(
            pb.GenerateRequest(
                prompt="x [[fake delay=60 child=1]]", count=2, request_id="portable-cancel"
            )
        )
        assert procs.wait_until(
            lambda: (
                len(srv.runs_of("portable-cancel")) == 2
                and all(procs.running(r["child_pid"]) for r in srv.runs_of("portable-cancel"))
            ),
            timeout=15,
        )
        runs = srv.runs_of("portable-cancel")
        call.cancel()
        assert procs.wait_until(lambda: not_running(runs), timeout=10), runs
        # The leaders were ours: reaped, not even zombies.
        assert procs.wait_until(lambda: not any(procs.exists(r["pid"]) for r in runs), timeout=5)


def test_portable_path_sweeps_what_a_killed_server_left(tmp_path):
    state = tmp_path / "state"
    with start_server(tmp_path, state_dir=state, env=PORTABLE) as first:
        call = first.stub().Generate(
            pb.GenerateRequest(
                prompt="x [[fake delay=120 child=1]]", count=1, request_id="portable-orphan"
            )
        )
        assert procs.wait_until(
            lambda: (
                len(first.runs_of("portable-orphan")) == 1
                and all(procs.running(r["child_pid"]) for r in first.runs_of("portable-orphan"))
            ),
            timeout=15,
        )
        runs = first.runs_of("portable-orphan")
        first.kill_hard()
        with start_server(tmp_path, state_dir=state, env=PORTABLE) as second:
            assert procs.wait_until(lambda: not_running(runs), timeout=10), runs
            swept = [
                r for r in second.log_records() if r.get("event") == "startup.killed_leftover_codex"
            ]
            # The sweep found this run's leftovers by its run id. Which of its
            # processes were still alive to be swept depends on timing (codex may
            # already have died of its closed stdout); every one is gone above.
            run_pids = set(procs.run_pids(runs[0]))
            assert swept and swept[0]["pids"] and set(swept[0]["pids"]) <= run_pids, (
                swept,
                run_pids,
            )
        call.cancel()
