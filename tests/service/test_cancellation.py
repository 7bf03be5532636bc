"""Cancellation that really cancels: client cancel, deadline, the server's own
timeout and server shutdown each leave no process of the request, looked up
by pid and by process group, and store nothing."""

from __future__ import annotations

import grpc
import pytest
from codeximage.v1 import image_service_pb2 as pb

from tests.support import procs
from tests.support.grpc_helpers import error_details
from tests.support.server_proc import start_server

GRACE_MS = 500


def start_slow(stub, request_id, count=4, extra="", timeout=None):
    request = pb.GenerateRequest(
        prompt=f"x [[fake delay=60 child=1 {extra}]]", count=count, request_id=request_id
    )
    return stub.Generate(request, timeout=timeout)


def wait_started(server, request_id, count):
    """Until every candidate's codex and its grandchild exist."""
    assert procs.wait_until(
        lambda: (
            len(server.runs_of(request_id)) == count
            and all(procs.running(r["child_pid"]) for r in server.runs_of(request_id))
        ),
        timeout=15,
    )
    runs = server.runs_of(request_id)
    assert all(procs.running(r["pid"]) for r in runs)
    return runs


def stored_for(server, request_id):
    """Images of the request in the store's index."""
    return list(
        server.stub().ListImages(pb.ListImagesRequest(request_id=request_id), timeout=10).images
    )


@pytest.mark.parametrize("ignore_term", [False, True], ids=["obeys-sigterm", "ignores-sigterm"])
def test_client_cancel_leaves_no_process(stub, server, ignore_term):
    rid = f"cancel-{int(ignore_term)}"
    call = start_slow(stub, rid, extra="ignore_term=1" if ignore_term else "")
    runs = wait_started(server, rid, 4)
    call.cancel()
    # Obeying SIGTERM ends at once; ignoring it waits out the grace, then SIGKILL.
    assert procs.wait_until(lambda: procs.all_gone(runs), timeout=GRACE_MS / 1000 + 5), [
        r for r in runs if not procs.run_gone(r)
    ]
    with pytest.raises(grpc.RpcError) as exc:
        list(call)
    assert exc.value.code() == grpc.StatusCode.CANCELLED
    assert not stored_for(server, rid)
    # The request's private working directory (references, candidates' cwd) is removed.
    assert procs.wait_until(
        lambda: not list((server.state_dir / "work").glob(f"{rid}-*")), timeout=5
    )


def test_deadline_leaves_no_process(stub, server):
    call = start_slow(stub, "deadline", count=2, extra="ignore_term=1", timeout=2.0)
    runs = wait_started(server, "deadline", 2)
    with pytest.raises(grpc.RpcError) as exc:
        list(call)
    assert exc.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert procs.wait_until(lambda: procs.all_gone(runs), timeout=GRACE_MS / 1000 + 5)
    assert procs.wait_until(
        lambda: not list((server.state_dir / "work").glob("deadline-*")), timeout=5
    )
    assert not stored_for(server, "deadline")


def test_server_timeout_is_deadline_exceeded(tmp_path):
    with start_server(
        tmp_path, args=["--generation-timeout-ms", "1500", "--kill-grace-ms", "300"]
    ) as srv:
        call = start_slow(srv.stub(), "too-slow", count=2)
        with pytest.raises(grpc.RpcError) as exc:
            list(call)
        info, _ = error_details(exc.value)
        assert (
            exc.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED and info.reason == "CODEX_TIMEOUT"
        )
        runs = srv.runs_of("too-slow")
        assert len(runs) == 2
        assert procs.wait_until(lambda: procs.all_gone(runs), timeout=5)


def test_server_shutdown_kills_running_codex(tmp_path):
    with start_server(tmp_path, args=["--kill-grace-ms", "300"]) as srv:
        call = start_slow(srv.stub(), "shutdown", count=3, extra="ignore_term=1")
        runs = wait_started(srv, "shutdown", 3)
        assert srv.stop() == 0
        # The server waited for its codex groups before it exited.
        assert procs.all_gone(runs), [r for r in runs if not procs.run_gone(r)]
        with pytest.raises(grpc.RpcError):
            list(call)


def test_queued_request_cancel_frees_its_place(tmp_path):
    with start_server(tmp_path, args=["--max-concurrent", "1", "--queue-limit", "1"]) as srv:
        stub = srv.stub()
        running = start_slow(stub, "holder", count=1)
        wait_started(srv, "holder", 1)
        queued = start_slow(stub, "waiter", count=1)
        first = next(iter(queued))
        assert first.progress.stage == pb.Progress.STAGE_QUEUED
        queued.cancel()
        # Its place is free again: the next request queues instead of being refused.
        again = start_slow(stub, "waiter-2", count=1)
        assert next(iter(again)).progress.stage == pb.Progress.STAGE_QUEUED
        again.cancel()
        running.cancel()
        assert procs.wait_until(lambda: procs.all_gone(srv.fake_runs()), timeout=5)
        assert not srv.runs_of("waiter") and not srv.runs_of("waiter-2"), (
            "queued requests never started codex"
        )
