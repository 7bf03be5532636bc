"""HAProxy in front of three replicas: every surface reaches a healthy replica,
requests spread over all of them, and cancellation travels through."""

from __future__ import annotations

import json
import urllib.request

import grpc
from codeximage.v1 import image_service_pb2 as pb
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support import procs

from .conftest import replica_runs


def owner_of(cluster, request_id):
    return [
        r.name
        for r in cluster.replicas
        if any(f"/{request_id}-" in run.get("cwd", "") for run in replica_runs(r))
    ]


def test_grpc_and_http_reach_the_replicas(cluster, stub):
    with grpc.insecure_channel(cluster.balancer.target) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert stub.GetCapabilities(pb.GetCapabilitiesRequest(), timeout=5).ByteSize() > 0
    with urllib.request.urlopen(cluster.balancer.http_base + "/healthz", timeout=5) as resp:
        assert json.load(resp)["ready"] is True
    with urllib.request.urlopen(cluster.balancer.http_base + "/", timeout=5) as resp:  # the console
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/html")


def test_generations_spread_over_every_replica(cluster, stub):
    """Six concurrent 1 s generations through one channel: leastconn gives each replica some."""
    calls = [
        stub.Generate(
            pb.GenerateRequest(prompt="spread [[fake delay=1]]", request_id=f"spread-{i}"),
            timeout=30,
        )
        for i in range(6)
    ]
    for call in calls:
        assert [m for m in call][-1].HasField("summary")
    owners = {name for i in range(6) for name in owner_of(cluster, f"spread-{i}")}
    assert owners == {"r1", "r2", "r3"}, owners


def test_http_generate_through_the_balancer(cluster):
    body = json.dumps({"prompt": "over http [[fake delay=0.1]]"}).encode()
    req = urllib.request.Request(
        cluster.balancer.http_base + "/v1/images/generate",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        out = json.load(resp)
    # Links point back at the balancer (the Host the caller used), not at a replica.
    assert out["data"][0]["url"].startswith(cluster.balancer.http_base + "/v1/"), out["data"][0][
        "url"
    ]


def test_cancel_through_the_balancer_kills_codex_on_its_replica(cluster, stub):
    call = stub.Generate(
        pb.GenerateRequest(prompt="slow [[fake delay=60 child=1]]", request_id="cancel-lb")
    )
    assert procs.wait_until(lambda: owner_of(cluster, "cancel-lb"), 15)
    replica = next(r for r in cluster.replicas if r.name == owner_of(cluster, "cancel-lb")[0])
    runs = [run for run in replica_runs(replica) if "/cancel-lb-" in run["cwd"]]
    assert procs.wait_until(lambda: all(procs.running(r["child_pid"]) for r in runs), 10)
    call.cancel()
    assert procs.wait_until(lambda: procs.all_gone(runs), 5), runs
