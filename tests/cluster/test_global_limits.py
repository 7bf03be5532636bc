"""Key limits hold across replicas: they are counted in PostgreSQL when a
request is recorded, one admission of a key at a time on any replica (an
advisory lock), so neither requests made one after another nor at once on
several replicas get past a key's daily limit or its concurrency. A killed
replica's running request stops counting when its lease lapses."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import grpc
from codeximage.v1 import image_service_pb2 as pb, image_service_pb2_grpc as pbg

from tests.support import procs

from .conftest import generate_on, key_secret, live_runs

CLUSTER_KEYS = {
    "team": {"images_per_day": 3},
    "burst": {"images_per_day": 3},
    "pair": {"max_concurrent": 2},
}
LEASE_MS = 1500
CLUSTER_ENV = {"CODEX_IMAGE_SERVER_LEASE_MS": str(LEASE_MS)}


def test_a_keys_daily_limit_counts_images_made_through_every_replica(cluster):
    r1, r2, r3 = cluster.replicas
    for replica in (r1, r2, r3):
        images, error = generate_on(replica, "limited [[fake delay=0.05]]", key="team")
        assert error is None and len(images) == 1, error
    for replica in (r1, r2, r3):
        images, error = generate_on(replica, "limited [[fake delay=0.05]]", key="team")
        assert error is not None and error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
        assert "3 of its 3 images" in error.details()


def refused_for(error, reason: str) -> bool:
    return (
        error is not None
        and error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        and reason in error.details()
    )


def test_a_keys_daily_limit_holds_when_every_replica_admits_at_once(cluster):
    targets = [r for r in cluster.replicas for _ in range(3)]
    with ThreadPoolExecutor(len(targets)) as pool:
        results = list(
            pool.map(lambda r: generate_on(r, "burst [[fake delay=0.3]]", key="burst"), targets)
        )
    made = [images for images, error in results if error is None]
    assert sum(len(images) for images in made) == 3, [e for _, e in results]
    assert all(refused_for(error, "of its 3 images") for _, error in results if error is not None)


def test_a_keys_concurrency_holds_across_replicas(cluster):
    """Six long requests at once, two on each replica, for a key allowed two
    at a time: exactly two run (per-process counting would let all six in)."""
    targets = [r for r in cluster.replicas for _ in range(2)]
    with ThreadPoolExecutor(len(targets)) as pool:
        results = list(
            pool.map(lambda r: generate_on(r, "pair [[fake delay=2]]", key="pair"), targets)
        )
    assert sum(error is None for _, error in results) == 2, [e for _, e in results]
    assert all(
        refused_for(error, "2 requests running") for _, error in results if error is not None
    )


def test_a_killed_replicas_running_request_stops_counting_when_its_lease_lapses(cluster):
    r1, r2, r3 = cluster.replicas
    secret = [("authorization", f"Bearer {key_secret('pair')}")]
    channels = [grpc.insecure_channel(r.grpc_target) for r in (r1, r2)]
    calls = []
    try:
        calls += [
            pbg.ImageServiceStub(ch).Generate(
                pb.GenerateRequest(prompt="held [[fake delay=60]]", request_id=f"held-{i}"),
                metadata=secret,
            )
            for i, ch in enumerate(channels)
        ]
        assert procs.wait_until(lambda: len(live_runs(cluster, "held-")) == 2, 15)
        _, error = generate_on(r3, "third [[fake delay=0.05]]", key="pair")
        assert refused_for(error, "2 requests running"), error

        r1.kill()
        killed_at = time.monotonic()
        # The slot r1 held frees itself within one lease (its last renewal
        # was at most a third of a lease before the kill).
        admitted_after = None
        while time.monotonic() - killed_at < LEASE_MS / 1000 + 5:
            images, error = generate_on(r3, "third [[fake delay=0.05]]", key="pair")
            if error is None:
                admitted_after = time.monotonic() - killed_at
                break
            assert refused_for(error, "running"), error
            time.sleep(0.1)
        assert admitted_after is not None, "the killed replica's request still counts"
        assert admitted_after >= LEASE_MS / 1000 / 2, (
            f"freed after {admitted_after:.2f}s: before its lease lapsed"
        )
        print(
            f"a killed replica's key slot freed {admitted_after:.2f}s after SIGKILL (lease "
            f"{LEASE_MS} ms)"
        )
        # r2's request still counts: one more fills the key's two.
        channels.append(grpc.insecure_channel(r3.grpc_target))
        calls.append(
            pbg.ImageServiceStub(channels[-1]).Generate(
                pb.GenerateRequest(prompt="held [[fake delay=60]]", request_id="held-3"),
                metadata=secret,
            )
        )
        assert procs.wait_until(lambda: len(live_runs(cluster, "held-3")) == 1, 15)
        _, error = generate_on(r3, "fifth [[fake delay=0.05]]", key="pair")
        assert refused_for(error, "2 requests running"), error
    finally:
        for call in calls:
            call.cancel()
        for ch in channels:
            ch.close()
        r1.start()  # its orphaned codex dies and its request is ended
    assert procs.wait_until(lambda: not live_runs(cluster, "held-"), 15)
