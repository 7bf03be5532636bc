"""SIGKILL of a replica mid-generation: its caller gets an error at once (not a
hang, not a result), HAProxy takes it out of rotation within the stated bound,
new requests keep succeeding, and its orphaned codex runs die when it restarts."""
from __future__ import annotations

import hashlib
import time

import grpc
import pytest

from codeximage.v1 import image_service_pb2 as pb
from codeximage.v1 import image_service_pb2_grpc as pbg
from tests.support import procs

from .conftest import CHECK_MS, replica_runs

# Two failed checks, each bounded by the 1 s connect timeout (refused at once here).
OUT_OF_ROTATION_S = 2 * CHECK_MS / 1000 + 1.0


def finished_image_through(replica) -> pb.Image:
    with grpc.insecure_channel(replica.grpc_target) as channel:
        events = list(pbg.ImageServiceStub(channel).Generate(
            pb.GenerateRequest(prompt="finished [[fake delay=0.05 noise=1]]"), timeout=30))
    return next(e.image for e in events if e.WhichOneof("event") == "image")


def test_sigkill_mid_generation(cluster, stub):
    finished = [finished_image_through(r) for r in cluster.replicas]
    call = stub.Generate(pb.GenerateRequest(prompt="doomed [[fake delay=60 child=1]]", request_id="doomed"))
    assert procs.wait_until(lambda: any("/doomed-" in r["cwd"] for rep in cluster.replicas
                                        for r in replica_runs(rep)), 15)
    victim = next(rep for rep in cluster.replicas if any("/doomed-" in r["cwd"] for r in replica_runs(rep)))
    orphans = [r for r in replica_runs(victim) if "/doomed-" in r["cwd"]]
    assert procs.wait_until(lambda: all(procs.running(r["child_pid"]) for r in orphans), 10)

    killed_at = time.monotonic()
    victim.kill()
    with pytest.raises(grpc.RpcError) as err:
        list(call)
    waited = time.monotonic() - killed_at
    assert waited < 2.0, f"the caller of the killed request waited {waited:.1f}s"
    # HAProxy 2.6 ends the stream without trailers (UNKNOWN "Stream removed");
    # a stream cut before its headers is UNAVAILABLE. Neither is a result.
    assert err.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN), err.value

    # New requests succeed at once (a refused connection is redispatched) ...
    for i in range(4):
        last = list(stub.Generate(pb.GenerateRequest(prompt="after [[fake delay=0.05]]"), timeout=20))[-1]
        assert last.HasField("summary")
    # ... and the dead replica is out of rotation within the bound.
    assert procs.wait_until(lambda: cluster.balancer.server_states()[f"replicas_grpc/{victim.name}"] != "UP",
                            OUT_OF_ROTATION_S), cluster.balancer.server_states()
    print(f"out of rotation within {time.monotonic() - killed_at:.2f}s of SIGKILL")

    # Every finished image, the dead replica's too, is whole with its record.
    for image in finished:
        assert stub.GetImage(pb.GetImageRequest(image_id=image.id), timeout=10).image == image
        data = b"".join(c.data for c in stub.GetImageFile(pb.GetImageFileRequest(image_id=image.id), timeout=30))
        assert hashlib.sha256(data).hexdigest() == image.sha256

    # Its codex runs outlive it (nobody is left to stop them) until it restarts.
    assert any(procs.running(r["child_pid"]) for r in orphans)
    victim.start()
    assert procs.wait_until(lambda: procs.all_gone(orphans), 10), orphans
    # ... which also ends the request it left running, and no other replica's.
    record = stub.GetRequest(pb.GetRequestRequest(request_id="doomed"), timeout=10).request
    assert (record.status, record.error_reason) == ("failed", "SERVER_STOPPED")
    assert procs.wait_until(lambda: cluster.balancer.server_states()[f"replicas_grpc/{victim.name}"] == "UP",
                            OUT_OF_ROTATION_S + 2), cluster.balancer.server_states()
