"""Supervision: every process the cluster started comes back after a SIGKILL
(by pid), logged as one JSON restart line, and the cluster serves again: a
replica kills its dead self's codex runs and is back in rotation; replicas
reach a restarted PostgreSQL and object store without a restart of their own."""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path

import grpc
import pytest
from codeximage.v1 import image_service_pb2 as pb, image_service_pb2_grpc as pbg

from tests.support import procs

from .conftest import replica_runs

BACK_S = 90  # a JVM or a postmaster starting on two busy cores


@pytest.fixture(scope="module")
def supervised(cluster):
    lines: list[dict] = []
    supervisor = cluster.supervise(emit=lines.append)
    yield cluster, lines
    supervisor.stop()


def _restarted(lines: list[dict], name: str, old_pid: int) -> bool:
    return any(
        line["process"] == name and line["old_pid"] == old_pid and line["outcome"] == "started"
        for line in lines
    )


def _serves(target: str) -> bool:
    """One generation through `target`, its file fetched and checked: the whole path works."""
    try:
        with grpc.insecure_channel(target) as channel:
            stub = pbg.ImageServiceStub(channel)
            events = list(
                stub.Generate(pb.GenerateRequest(prompt="back [[fake delay=0.05]]"), timeout=20)
            )
            image = next(e.image for e in events if e.WhichOneof("event") == "image")
            data = b"".join(
                c.data
                for c in stub.GetImageFile(pb.GetImageFileRequest(image_id=image.id), timeout=20)
            )
    except grpc.RpcError:
        return False
    return hashlib.sha256(data).hexdigest() == image.sha256


def _replica_pids(cluster) -> list[int]:
    return [r.pid for r in cluster.replicas]


def test_a_killed_replica_comes_back_kills_its_orphans_and_rejoins(supervised, stub):
    cluster, lines = supervised
    call = stub.Generate(
        pb.GenerateRequest(
            prompt="orphaned [[fake delay=60 child=1 shell=60]]", request_id="orphaned"
        )
    )
    assert procs.wait_until(
        lambda: any(
            "/orphaned-" in r["cwd"] for rep in cluster.replicas for r in replica_runs(rep)
        ),
        15,
    )
    victim = next(
        rep for rep in cluster.replicas if any("/orphaned-" in r["cwd"] for r in replica_runs(rep))
    )
    orphans = [r for r in replica_runs(victim) if "/orphaned-" in r["cwd"]]
    old_pid = victim.pid
    os.kill(old_pid, signal.SIGKILL)
    with pytest.raises(grpc.RpcError):
        list(call)
    assert procs.wait_until(lambda: _restarted(lines, victim.name, old_pid), BACK_S), lines
    assert victim.pid != old_pid and procs.running(victim.pid)
    # Its dead self's codex runs (leader, grandchild, the shell in its own session) are gone.
    pids = [p for r in orphans for p in (r["pid"], r["child_pid"], r["shell_pid"]) if p]
    assert procs.wait_until(lambda: not any(procs.running(p) for p in pids), 15), pids
    assert procs.wait_until(
        lambda: cluster.balancer.server_states()[f"replicas_grpc/{victim.name}"] == "UP", 15
    )
    assert _serves(victim.grpc_target)


def _postmaster_pid(cluster) -> int:
    """The postmaster itself (as root it runs under runuser, whose pid we started)."""
    return int((Path(cluster.postgres.data) / "postmaster.pid").read_text().split()[0])


@pytest.mark.parametrize("store", ["postgres", "objectstore"])
def test_a_killed_store_comes_back_and_replicas_reconnect(supervised, store):
    cluster, lines = supervised
    replicas = _replica_pids(cluster)
    member = dict(cluster.members())[store]
    old_pid = member.proc.pid
    os.kill(_postmaster_pid(cluster) if store == "postgres" else old_pid, signal.SIGKILL)
    assert procs.wait_until(lambda: _restarted(lines, store, old_pid), BACK_S), lines
    # Each replica, straight, not through the balancer: each reconnects by itself.
    for replica in cluster.replicas:
        assert procs.wait_until(
            lambda replica=replica: _serves(replica.grpc_target), 20, interval=0.5
        ), replica.name
    assert _replica_pids(cluster) == replicas, "a replica was restarted"


def test_a_killed_balancer_comes_back_and_serves(supervised):
    cluster, lines = supervised
    old_pid = cluster.balancer.proc.pid
    os.kill(old_pid, signal.SIGKILL)
    assert procs.wait_until(lambda: _restarted(lines, "haproxy", old_pid), BACK_S), lines
    assert procs.wait_until(lambda: _serves(cluster.balancer.target), 20, interval=0.5)


def test_each_restart_is_one_json_line_with_its_backoff(supervised):
    _, lines = supervised
    names = {line["process"] for line in lines}
    assert {"postgres", "objectstore", "haproxy"} <= names and names & {"r1", "r2", "r3"}, lines
    for line in lines:
        assert (
            line["event"] == "cluster.restart"
            and line["backoff_s"] > 0
            and line["exit"] is not None
        ), line
