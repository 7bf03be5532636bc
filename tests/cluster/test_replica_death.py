"""SIGKILL of a replica mid-generation: its caller gets an error at once (not a
hang, not a result), HAProxy takes it out of rotation within the stated bound,
new requests keep succeeding, and its orphaned codex runs die when it restarts."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from codeximage.v1 import image_service_pb2 as pb
from codeximage.v1 import image_service_pb2_grpc as pbg
from codex_image_client.errors import CONNECTION_LOST, CUT_STREAM, from_rpc_error
from codex_image_client.retry import retryable
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
    # What the wire carries: HAProxy 2.6 ends the stream (its headers were
    # sent) with END_STREAM and no trailers, which grpc-core reports as UNKNOWN
    # "Stream removed (...)". The Python client and CLI read exactly that as
    # UNAVAILABLE CONNECTION_LOST, and retry it.
    assert err.value.code() == grpc.StatusCode.UNKNOWN and err.value.details().startswith(CUT_STREAM), err.value
    seen = from_rpc_error(err.value)
    assert (seen.code, seen.reason) == (grpc.StatusCode.UNAVAILABLE, CONNECTION_LOST) and retryable(seen)

    # New requests succeed at once (a refused connection is redispatched) ...
    for i in range(4):
        last = list(stub.Generate(pb.GenerateRequest(prompt="after [[fake delay=0.05]]"), timeout=20))[-1]
        assert last.HasField("summary")
        if i == 0:
            print(f"first new request through the balancer done {time.monotonic() - killed_at:.2f}s after SIGKILL")
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


def test_the_cli_retries_a_generation_cut_by_its_replicas_death(cluster, tmp_path):
    """The caller of a killed request, through the balancer, is the CLI: it
    reads the cut stream as CONNECTION_LOST, waits, and tries again; the
    balancer sends the retry to a live replica, and the image arrives."""
    env = dict(os.environ, CODEX_IMAGE_ADDR=cluster.balancer.target)
    env.pop("CODEX_IMAGE_API_KEY", None)
    cli = subprocess.Popen([str(Path(sys.executable).with_name("codex-image")), "generate", "cut [[fake delay=3]]",
                            "--request-id", "cut", "--retries", "2", "-o", str(tmp_path)],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    victim = None
    try:
        assert procs.wait_until(lambda: any("/cut-" in r["cwd"] for rep in cluster.replicas
                                            for r in replica_runs(rep)), 15)
        victim = next(rep for rep in cluster.replicas if any("/cut-" in r["cwd"] for r in replica_runs(rep)))
        victim.kill()
        out, err = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        if victim is not None:
            victim.start()  # its orphaned codex dies
    assert cli.returncode == 0, err
    assert "server unavailable (CONNECTION_LOST); retrying in 1s (try 2 of 3)" in err, err
    (saved,) = [Path(line) for line in out.splitlines()]
    assert saved.read_bytes().startswith(b"\x89PNG")
    # The retry ran on another replica.
    runs = [(rep.name, r) for rep in cluster.replicas for r in replica_runs(rep) if "/cut-" in r["cwd"]]
    assert len(runs) == 2 and len({name for name, _ in runs}) == 2, runs
