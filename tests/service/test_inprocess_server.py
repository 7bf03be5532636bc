"""The in-process server the fast tests use (tests/support/inprocess_server.py)
keeps to itself: two at once each see only their own codex runs, and while
one runs, the test process's children are still its own to wait for (a
subreaper engine's reaper thread would take their exit status)."""

from __future__ import annotations

import ctypes
import subprocess
import sys
import time

from codeximage.v1 import image_service_pb2 as pb

from tests.support import procs
from tests.support.inprocess_server import serve_in_process

PR_GET_CHILD_SUBREAPER = 37


def _is_subreaper() -> bool:
    flag = ctypes.c_int(0)
    assert ctypes.CDLL(None).prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0) == 0
    return bool(flag.value)


def _generate(srv, request_id: str) -> None:
    channel = srv.channel()
    try:
        responses = srv.stub(channel).Generate(
            pb.GenerateRequest(prompt="x", request_id=request_id), timeout=30
        )
        assert responses and list(responses)[-1].HasField("summary")
    finally:
        channel.close()


def test_two_servers_at_once_each_see_only_their_own_runs(tmp_path):
    with (
        serve_in_process(tmp_path / "a") as first,
        serve_in_process(tmp_path / "b") as second,
    ):
        _generate(first, "first-run")
        _generate(second, "second-run")
        assert len(first.runs_of("first-run")) == 1 and not first.runs_of("second-run")
        assert len(second.runs_of("second-run")) == 1 and not second.runs_of("first-run")
        runs = first.fake_runs() + second.fake_runs()
    assert procs.wait_until(lambda: procs.all_gone(runs), timeout=10)


def test_while_a_server_runs_a_childs_exit_status_is_its_parents_to_read(tmp_path):
    with serve_in_process(tmp_path) as srv:
        _generate(srv, "some-run")
        assert not _is_subreaper(), "the test process's children stay its own"
        child = subprocess.Popen([sys.executable, "-S", "-c", "import sys; sys.exit(3)"])
        # Left a zombie for longer than a reaper of the engine's would wait between rounds.
        assert procs.wait_until(lambda: not procs.running(child.pid), timeout=10)
        time.sleep(1.0)
        assert child.wait(timeout=10) == 3
