"""Replicas sharing one Codex account (the same NAME, each its own copy of
the login) share its concurrency budget through PostgreSQL: runs are rows
counted under an advisory lock while their replica's lease lives, so two
replicas never run more on it than its budget, a killed replica's runs free
themselves when its lease lapses, and an account one replica found used up
is skipped by every replica until its reset."""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from codeximage.v1 import image_service_pb2 as pb, image_service_pb2_grpc as pbg

from tests.support import procs

from .conftest import account_home, generate_on, live_runs, replica_runs

# Every replica has q (one run) and shared (two); r1's copy of q meets the
# usage limit, and every candidate tries q first (the least busy, listed first).
CLUSTER_ACCOUNTS = ["q:1", "shared:2"]
LEASE_MS = 1500
CLUSTER_ENV = {"CODEX_IMAGE_SERVER_LEASE_MS": str(LEASE_MS)}
RUN_S = 1.5
RESETS_AT = 1893456000  # what the fake codex's usage-limit answer says


class Peak:
    """The most fake codex processes alive at once (sampled by pid every 5 ms)."""

    def __init__(self, cluster, marker: str):
        self.cluster, self.marker, self.most = cluster, marker, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample)

    def _sample(self):
        while not self._stop.wait(0.005):
            self.most = max(self.most, len(live_runs(self.cluster, self.marker)))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


@pytest.fixture(scope="module")
def q_used_up(cluster):
    """r1 meets q's usage limit (once), marks it, and makes the image on shared."""
    r1 = cluster.replicas[0]
    (account_home(r1, "q") / "fake_codex.json").write_text(json.dumps({"mode": "quota"}))
    images, error = generate_on(r1, "spent [[fake delay=0.05]]")
    assert error is None and images[0].account == "shared", error


def test_two_replicas_never_run_more_on_one_account_than_its_budget(cluster, q_used_up):
    r1, r2 = cluster.replicas[:2]
    targets = [(r, f"budget-{r.name}-{i}") for r in (r1, r2) for i in range(3)]
    with Peak(cluster, "budget-") as peak, ThreadPoolExecutor(len(targets)) as pool:
        started = time.monotonic()
        results = list(pool.map(lambda t: generate_on(t[0], f"budget [[fake delay={RUN_S}]]", request_id=t[1]),
                                targets))
        took = time.monotonic() - started
    assert all(error is None for _, error in results), [e for _, e in results]
    assert {images[0].account for images, _ in results} == {"shared"}
    # Each replica alone would run its three at once (two on the account,
    # its own budget): four at a time together. Shared: two, in three rounds.
    assert peak.most == 2, peak.most
    assert took >= 3 * RUN_S, f"six {RUN_S}s runs, two at a time, took {took:.2f}s"


def test_a_killed_replicas_runs_free_the_account_when_its_lease_lapses(cluster, q_used_up):
    r1, r2 = cluster.replicas[:2]
    channel = grpc.insecure_channel(r1.grpc_target)
    call = pbg.ImageServiceStub(channel).Generate(pb.GenerateRequest(
        prompt="hog [[fake delay=60]]", count=2, request_id="hog"))
    try:
        assert procs.wait_until(lambda: len(live_runs(cluster, "hog-")) == 2, 15)
        killed_wall = time.time()
        r1.kill()
        with pytest.raises(grpc.RpcError):
            list(call)
        # r2's run waits for the account (budget 2, both held by r1) until
        # r1's lease lapses: between 2/3 of a lease and one lease after the kill.
        images, error = generate_on(r2, "after [[fake delay=0.05]]", request_id="after")
        assert error is None and images[0].account == "shared", error
        (run,) = [r for r in replica_runs(r2) if "/after-" in r["cwd"]]
        waited = run["started"] - killed_wall
        print(f"a killed replica's account runs freed {waited:.2f}s after SIGKILL (lease "
              f"{LEASE_MS} ms)")
        assert LEASE_MS / 1000 / 2 <= waited <= LEASE_MS / 1000 + 3, waited
    finally:
        channel.close()
        r1.start()  # sweeps its orphaned codex runs
    assert procs.wait_until(lambda: not live_runs(cluster, "hog-"), 15)


def test_an_account_used_up_on_one_replica_is_skipped_by_every_replica(cluster, q_used_up):
    r1, r2, r3 = cluster.replicas
    for replica in (r2, r3):
        with grpc.insecure_channel(replica.grpc_target) as ch:
            accounts = pbg.ImageServiceStub(ch).Health(pb.HealthRequest(), timeout=10).accounts
        q = next(a for a in accounts if a.name == "q")
        assert (q.logged_in, q.ready, q.exhausted_until.seconds) == (True, False, RESETS_AT), q
        # Their own copy of q works, yet they never try it: every image is made on shared.
        for _ in range(2):
            images, error = generate_on(replica, "elsewhere [[fake delay=0.05]]")
            assert error is None and images[0].account == "shared", error
    # Only r1 ever met the limit, once: nobody ran q again after it was marked.
    logged = [json.loads(line) for path in (r.log_path for r in cluster.replicas)
              for line in path.read_text().splitlines() if line.startswith("{")]
    assert [r["account"] for r in logged if r.get("event") == "candidate.account_exhausted"] == ["q"]
