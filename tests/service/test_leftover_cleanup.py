"""The tests' own cleanup (procs.kill_leftover_runs) kills a leftover fake run
and never a stranger that now has a pid a fake once had (pids cycle through
32,768 here, and two suites may share the machine)."""

import os
import subprocess

from tests.support import procs


def _sleeper(env: dict) -> subprocess.Popen:
    return subprocess.Popen(["sleep", "30"], env=env, start_new_session=True)


def test_kills_a_leftover_of_the_run_and_spares_a_stranger(tmp_path):
    piddir = str(tmp_path / "fake-codex-pids")
    leftover = _sleeper(dict(os.environ, FAKE_CODEX_PIDDIR=piddir))
    stranger = _sleeper({k: v for k, v in os.environ.items() if k != "FAKE_CODEX_PIDDIR"})
    try:
        runs = [{"pid": p.pid, "pgid": p.pid, "piddir": piddir} for p in (leftover, stranger)]
        assert procs.kill_leftover_runs(runs) == [leftover.pid]
        assert leftover.wait(10) == -9
        assert stranger.poll() is None and procs.running(stranger.pid)
    finally:
        for p in (leftover, stranger):
            p.kill()
            p.wait()
