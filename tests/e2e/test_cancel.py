"""Cancelling a Generate while the upstream is slow ends every codex process."""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from codeximage.v1 import image_service_pb2 as pb

from . import realcodex

pytestmark = pytest.mark.realcodex

DEADLINE_S = 15  # bound on each wait; every wait below polls a condition


def _poll(condition, timeout: float = DEADLINE_S):
    end = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= end:
            return value
        time.sleep(0.02)


def _stored_files(server) -> list:
    return (
        [p for p in server.output_dir.rglob("*") if p.is_file()]
        if server.output_dir.exists()
        else []
    )


@pytest.mark.parametrize("count", [1, 2])
@pytest.mark.parametrize("which", ["server", "wrapper_server"])
def test_cancel_while_upstream_is_slow_leaves_no_codex_and_stores_nothing(
    request, which, fresh, mock_home, count
):
    server = request.getfixturevalue(which)
    stored_before = _stored_files(server)
    call = server.stub().Generate(
        pb.GenerateRequest(prompt="a slow one [[upstream: slow=60]]", count=count), timeout=120
    )
    received, ended = [], threading.Event()

    def consume():
        try:
            for event in call:
                received.append(event)
        except grpc.RpcError as exc:
            received.append(exc)
        finally:
            ended.set()

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    # Every candidate's codex is mid-stream, held by the stand-in.
    fresh.records.wait_for(
        lambda rs: sum(r["kind"] == "responses" for r in rs) >= count, DEADLINE_S
    )
    # One process group per candidate (native: 1 codex process; wrapper: node + native).
    per_run = 2 if which == "wrapper_server" else 1
    procs = _poll(
        lambda: (lambda p: p if len(p) >= per_run * count else None)(
            realcodex.codex_processes(server.pid)
        )
    )
    assert procs, f"expected {per_run} codex process(es) per candidate under the server"
    pgids = set(procs.values())
    assert len(pgids) == count, f"each candidate in its own process group: {procs}"
    # Everything in those groups counts, e.g. the shell codex starts for its env snapshot.
    procs.update({pid: g for g in pgids for pid in realcodex.group_members(g)})

    call.cancel()
    try:
        assert ended.wait(DEADLINE_S), "the call did not end after cancel()"
        assert _poll(lambda: not any(realcodex.alive(pid) for pid in procs)), (
            f"codex processes still alive after cancel: {[p for p in procs if realcodex.alive(p)]}"
        )
        assert _poll(lambda: not any(realcodex.group_members(g) for g in pgids)), (
            f"codex process groups not empty: {[realcodex.group_members(g) for g in pgids]}"
        )
        assert not realcodex.processes_with_codex_home(mock_home), "a codex of this server survived"
        # The upstream saw codex hang up on every held stream.
        closed = fresh.records.wait_for(
            lambda rs: (lambda c: c if len(c) >= count else None)(
                [r for r in rs if r["kind"] == "client_closed"]
            ),
            DEADLINE_S,
        )
        assert len(closed) >= count
        assert not fresh.records.all("images.generations")
        assert _stored_files(server) == stored_before, "a cancelled generation stored something"
        assert not any(
            hasattr(e, "WhichOneof") and e.WhichOneof("event") == "image" for e in received
        )
    finally:
        realcodex.kill_groups({pid: pgid for pid, pgid in procs.items() if realcodex.alive(pid)})
