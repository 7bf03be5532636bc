"""A server killed with SIGKILL cannot clean up; the next start must find the
codex runs it left and kill them, and must never touch another live server's."""

from __future__ import annotations

from codeximage.v1 import image_service_pb2 as pb

from tests.support import procs
from tests.support.server_proc import start_server


def start_slow(srv, rid, count):
    call = srv.stub().Generate(
        pb.GenerateRequest(prompt="x [[fake delay=120 child=1]]", count=count, request_id=rid)
    )
    assert procs.wait_until(
        lambda: (
            len(srv.runs_of(rid)) == count
            and all(procs.running(r["child_pid"]) for r in srv.runs_of(rid))
        ),
        timeout=15,
    )
    return call, srv.runs_of(rid)


def alive(runs):
    return [p for r in runs for p in procs.run_pids(r) if procs.running(p)]


def test_next_start_kills_what_a_killed_server_left(tmp_path):
    state = tmp_path / "state"
    with start_server(tmp_path, state_dir=state) as first:
        call, runs = start_slow(first, "orphaned", count=2)
        first.kill_hard()
        # Nobody is left to stop them: they keep running on the user's quota.
        # (A leader may die of its closed stdout; the grandchildren never write.)
        assert not procs.wait_until(lambda: not alive(runs), timeout=1.0)
        assert all(procs.running(r["child_pid"]) for r in runs)
        with start_server(tmp_path, state_dir=state) as second:
            assert procs.wait_until(lambda: not alive(runs), timeout=5), alive(runs)
            swept = [
                r for r in second.log_records() if r.get("event") == "startup.killed_leftover_codex"
            ]
            assert swept and set(procs.run_pids(runs[0])) & set(swept[0]["pids"])
        call.cancel()


def test_start_leaves_a_live_servers_codex_alone(tmp_path):
    state = tmp_path / "state"
    with start_server(tmp_path, state_dir=state) as owner:
        call, runs = start_slow(owner, "owned", count=1)
        with start_server(tmp_path, state_dir=state, output_dir=tmp_path / "out2"):
            pass
        assert len(alive(runs)) == 2, (
            "a second server sharing the state dir must not kill the first one's runs"
        )
        call.cancel()
        assert procs.wait_until(lambda: procs.all_gone(runs), timeout=5)
