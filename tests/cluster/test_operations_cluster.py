"""Detached generations across replicas (PostgreSQL queue): a replica
SIGKILLed mid-operation has its operation taken over by another once its
lease runs out, and any replica answers for any operation."""

from __future__ import annotations

import grpc
from codeximage.v1 import image_service_pb2 as pb, image_service_pb2_grpc as pbg
from google.longrunning import operations_pb2_grpc, operations_proto_pb2 as lro
from google.protobuf import duration_pb2

from tests.support import procs

from .conftest import replica_runs

LEASE_MS = 1500
CLUSTER_ENV = {"CODEX_IMAGE_SERVER_LEASE_MS": str(LEASE_MS)}


def runs_of(replica, request_id):
    return [r for r in replica_runs(replica) if f"/{request_id}-" in r["cwd"]]


def test_a_killed_replicas_operation_is_finished_by_another(cluster):
    first = cluster.replicas[0]
    with grpc.insecure_channel(first.grpc_target) as channel:
        op = pbg.ImageServiceStub(channel).SubmitGeneration(
            pb.GenerateRequest(prompt="survivor [[fake delay=4 child=1]]", request_id="cluster-op"),
            timeout=10,
        )
    assert procs.wait_until(lambda: any(runs_of(r, "cluster-op") for r in cluster.replicas), 15)
    victim = next(r for r in cluster.replicas if runs_of(r, "cluster-op"))
    onlooker = next(r for r in cluster.replicas if r is not victim)
    with grpc.insecure_channel(
        onlooker.grpc_target
    ) as channel:  # progress is stored: any replica reports it
        ops = operations_pb2_grpc.OperationsStub(channel)

        def seen_running():
            meta = pb.GenerationMetadata()
            ops.GetOperation(lro.GetOperationRequest(name=op.name)).metadata.Unpack(meta)
            return [c.state for c in meta.candidates] == ["running"]

        assert procs.wait_until(seen_running, 10)
    victim.kill()
    others = [r for r in cluster.replicas if r is not victim]
    with grpc.insecure_channel(others[0].grpc_target) as channel:
        done = operations_pb2_grpc.OperationsStub(channel).WaitOperation(
            lro.WaitOperationRequest(name=op.name, timeout=duration_pb2.Duration(seconds=40)),
            timeout=60,
        )
    assert done.done and done.WhichOneof("result") == "response", done
    meta = pb.GenerationMetadata()
    done.metadata.Unpack(meta)
    assert meta.attempts == 2 and meta.state == pb.GenerationMetadata.STATE_SUCCEEDED
    result = pb.GenerationResult()
    done.response.Unpack(result)
    assert len(result.images) == 1
    assert any(runs_of(r, "cluster-op") for r in others), "another replica ran it"


def alive(replica) -> bool:
    return replica.proc is not None and replica.proc.poll() is None


def test_cancel_through_another_replica_kills_the_runs(cluster):
    first = next(r for r in cluster.replicas if alive(r))
    with grpc.insecure_channel(first.grpc_target) as channel:
        op = pbg.ImageServiceStub(channel).SubmitGeneration(
            pb.GenerateRequest(
                prompt="doomed op [[fake delay=60 child=1]]", count=2, request_id="cluster-cancel"
            ),
            timeout=10,
        )
    assert procs.wait_until(
        lambda: sum(len(runs_of(r, "cluster-cancel")) for r in cluster.replicas) == 2, 15
    )
    runner = next(r for r in cluster.replicas if runs_of(r, "cluster-cancel"))
    runs = runs_of(runner, "cluster-cancel")
    other = next(r for r in cluster.replicas if r is not runner and alive(r))
    with grpc.insecure_channel(other.grpc_target) as channel:
        stub = operations_pb2_grpc.OperationsStub(channel)
        stub.CancelOperation(lro.CancelOperationRequest(name=op.name), timeout=10)
        done = stub.WaitOperation(
            lro.WaitOperationRequest(name=op.name, timeout=duration_pb2.Duration(seconds=20)),
            timeout=30,
        )
    assert done.done and done.error.code == 1  # CANCELLED
    assert procs.wait_until(lambda: procs.all_gone(runs), 10), (
        "the runner's codex runs outlived the cancel"
    )
