"""Replicas sharing one Codex account (the same NAME, each its own copy of
the login) share its concurrency budget through PostgreSQL: runs are rows
counted under an advisory lock while their replica's lease lives, so two
replicas never run more on it than its budget, a killed replica's runs free
themselves when its lease lapses, and an account one replica found used up
is skipped by every replica until its reset."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from codeximage.v1 import image_service_pb2 as pb, image_service_pb2_grpc as pbg

from tests.support import account_runs, procs

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
        results = list(
            pool.map(
                lambda t: generate_on(t[0], f"budget [[fake delay={RUN_S}]]", request_id=t[1]),
                targets,
            )
        )
        took = time.monotonic() - started
    assert all(error is None for _, error in results), [e for _, e in results]
    assert {images[0].account for images, _ in results} == {"shared"}
    # Each replica alone would run its three at once (two on the account,
    # its own budget): four at a time together. Shared: two, in three rounds.
    assert peak.most == 2, peak.most
    assert took >= 3 * RUN_S, f"six {RUN_S}s runs, two at a time, took {took:.2f}s"
    # The store's own record says the same: six runs, all given back, two at most at once.
    runs = [r for r in account_runs.read(cluster.postgres.url) if r.account == "shared"]
    assert len(runs) >= 6 and all(r.ended_by == "given back" for r in runs), runs
    assert account_runs.most_at_once(runs) == {"shared": 2}


def test_the_run_log_counts_overlapping_runs():
    t = [dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=s) for s in range(5)]

    def run(a, b):
        return account_runs.Run("x", "r1", t[a], t[b] if b is not None else None, "")

    # Back to back is one at a time; a nested run is two; one never ended counts to the end.
    assert account_runs.most_at_once([run(0, 1), run(1, 2), run(2, 3)]) == {"x": 1}
    assert account_runs.most_at_once([run(0, 3), run(1, 2), run(2, 4)]) == {"x": 2}
    assert account_runs.most_at_once([run(0, None), run(1, 2), run(3, 4)]) == {"x": 2}


def both_runs_on_r1(cluster, request_id: str, delay_s: float):
    """r1 holds both of shared's runs: (its channel, the call), once both run."""
    channel = grpc.insecure_channel(cluster.replicas[0].grpc_target)
    call = pbg.ImageServiceStub(channel).Generate(
        pb.GenerateRequest(
            prompt=f"{request_id} [[fake delay={delay_s}]]", count=2, request_id=request_id
        )
    )
    assert procs.wait_until(lambda: len(live_runs(cluster, f"{request_id}-")) == 2, 15)
    return channel, call


def test_a_killed_replicas_runs_free_the_account_when_its_lease_lapses(cluster, q_used_up):
    r1, r2 = cluster.replicas[:2]
    channel, call = both_runs_on_r1(cluster, "hog", 60)
    try:
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
        print(
            f"a killed replica's account runs freed {waited:.2f}s after SIGKILL (lease "
            f"{LEASE_MS} ms)"
        )
        assert LEASE_MS / 1000 / 2 <= waited <= LEASE_MS / 1000 + 3, waited
    finally:
        channel.close()
        r1.start()  # sweeps its orphaned codex runs
    assert procs.wait_until(lambda: not live_runs(cluster, "hog-"), 15)
    # The dead replica's two runs ended in the store's record when r2's
    # take found its lease lapsed (or when r1 came back, whichever first).
    r1_runs = [
        r
        for r in account_runs.read(cluster.postgres.url)
        if r.replica.endswith(os.path.realpath(r1.directory / "state"))
        and r.ended_by != "given back"
    ]
    assert len(r1_runs) == 2 and all(r.ended_at for r in r1_runs), r1_runs
    assert {r.ended_by for r in r1_runs} <= {"lease lapsed", "restarted"}, r1_runs


def test_a_postgres_outage_longer_than_a_lease_does_not_drop_live_runs(cluster, q_used_up):
    """PostgreSQL down for twice a lease: nobody could renew, yet r1 is alive
    and its two runs go on. Once PostgreSQL is back, r2 must wait for them,
    not drop them as lapsed and start a third run on the account."""
    r2 = cluster.replicas[1]
    channel, call = both_runs_on_r1(cluster, "outage", 8)
    try:
        cluster.postgres.stop()
        time.sleep(2 * LEASE_MS / 1000)  # the outage itself is the fault: every lease lapses in it
        cluster.postgres.start()
        images, error = generate_on(r2, "behind [[fake delay=0.05]]", request_id="behind")
        assert error is None, error
        assert len([e for e in call if e.WhichOneof("event") == "image"]) == 2
    finally:
        call.cancel()
        channel.close()
    runs = [r for r in account_runs.read(cluster.postgres.url) if r.account == "shared"]
    assert account_runs.most_at_once(runs) == {"shared": 2}, account_runs.at_the_peak(
        runs, "shared"
    )


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
    logged = [
        json.loads(line)
        for path in (r.log_path for r in cluster.replicas)
        for line in path.read_text().splitlines()
        if line.startswith("{")
    ]
    assert [r["account"] for r in logged if r.get("event") == "candidate.account_exhausted"] == [
        "q"
    ]
