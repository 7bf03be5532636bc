"""One chaos run: `make cluster`'s pieces (3 replicas, the fake codex at 1 s
per candidate, PostgreSQL, s3proxy, HAProxy), supervised; the workload and
the nemesis at once until both have done their share; then heal, settle and
check every invariant. Loopback only; bounded by `max_s` and by the counts."""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import os
import random
import tempfile
import threading
import time
from pathlib import Path

import grpc
from codex_image_cluster.cluster import Cluster
from codeximage.v1 import image_service_pb2 as pb, image_service_pb2_grpc as pbg

from tests.support import procs
from tests.support.server_proc import FAKE_CODEX_ENV, fake_codex_launcher

from .nemesis import Nemesis, wait_healed
from .workload import KEYS, Ledger, Workload, key_secret, metadata, sha256

CHECK_MS = 500  # HAProxy's health check; a SIGSTOP lasts longer than two of them
TERMINAL = {"completed", "failed", "cancelled", "refused"}


@dataclasses.dataclass(frozen=True)
class Plan:
    seed: int
    generations: int = 400
    faults: int = 25
    workers: int = 6
    max_s: float = 900.0
    gap_s: tuple = (1.0, 5.0)
    break_object: bool = False  # test-only: corrupt one stored object, so the checks must fail


def _cluster(directory: Path, limits: dict) -> Cluster:
    keys = directory / "keys.json"
    directory.mkdir(parents=True, exist_ok=True)
    keys.write_text(json.dumps({"keys": [
        {"name": name, "sha256": hashlib.sha256(key_secret(name).encode()).hexdigest(), "images_per_day": limits[name]}
        for name in KEYS]}))
    fake = fake_codex_launcher(directory)
    c = Cluster(directory / "c", replicas=3, codex_bin=str(fake), check_ms=CHECK_MS,
                env={"CODEX_IMAGE_SERVER_KEYS_FILE": str(keys), "FAKE_CODEX_DELAY": "1", **FAKE_CODEX_ENV})
    for replica in c.replicas:
        replica.codex_home.mkdir(parents=True, exist_ok=True)
        (replica.codex_home / "auth.json").write_text('{"fake": true}')
        replica.extra_env["FAKE_CODEX_PIDDIR"] = str(replica.directory / "fake-codex-pids")
    return c


def run(plan: Plan, report=print) -> tuple[list[str], list[str]]:
    """(the table's lines, the violations)."""
    directory = Path(tempfile.mkdtemp(prefix=f"chaos-{plan.seed}-", dir="/tmp"))
    # Two keys, half the calls each: alpha reaches its limit on the way, and
    # the calls go on with beta, whose limit is out of reach.
    limits = {"alpha": int(plan.generations * 0.3), "beta": plan.generations * 2}
    cluster = _cluster(directory, limits)
    rng = random.Random(plan.seed)
    ledger = Ledger()
    started = time.monotonic()
    with cluster:
        cluster.supervise(emit=lambda line: report(json.dumps(line)))
        bad = wait_healed(cluster, 60)
        if bad:
            return [], [f"the cluster did not come up: {bad}"]
        workload = Workload(cluster.balancer.target, cluster.balancer.http_base, plan.seed, ledger)
        nemesis = Nemesis(cluster, random.Random(rng.random()), plan.gap_s, hang_s=4 * CHECK_MS / 1000,
                          limit=plan.faults).start()
        seeds = [rng.random() for _ in range(plan.workers)]

        def enough() -> bool:
            return (ledger.answered_ok >= plan.generations and nemesis.total >= plan.faults) \
                or len(ledger.exhausted) == len(KEYS)

        def worker(i: int) -> None:
            r = random.Random(seeds[i])
            while not enough() and time.monotonic() - started < plan.max_s:
                workload.one(r)

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(plan.workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        nemesis.stop()
        nemesis.heal()
        took = time.monotonic() - started
        violations = []
        bad = wait_healed(cluster, 120)
        if bad:
            violations.append(f"not healed in 120 s: {bad}")
        if plan.break_object:
            _corrupt_one(cluster, ledger)
        violations += _settled(cluster)
        lost, checked = _fetch_all(cluster, ledger, violations)
        statuses = _history(workload.stub, ledger, violations)
        usage = _usage(workload.stub, ledger, limits, violations)
        orphans = _objects(cluster, workload.stub, violations)
        records = _records_have_objects(workload.stub, violations)
        workload.close()
        restarts = collections.Counter(line["process"] for line in cluster.supervisor.events)
    if ledger.answered_ok < plan.generations or nemesis.total < plan.faults:
        violations.append(f"bounded out after {took:.0f} s: {ledger.answered_ok} generations answered with "
                          f"an image, {nemesis.total} faults")
    table = [
        f"seed                     {plan.seed}",
        f"took                     {took:.0f} s",
        f"generations              {ledger.generations} (answered with an image "
        f"{ledger.answered_ok}, "
        f"with an error {ledger.answered_error})",
        f"refused for the limit    {ledger.refused_for_limit} (gRPC; keys at their limit: "
        f"{sorted(ledger.exhausted)})",
        f"reads, deletes           {ledger.reads}, {ledger.deletes}",
        f"faults                   {nemesis.total}: "
        + ", ".join(f"{k} {v}" for k, v in sorted(nemesis.injected.items())),
        "restarts                 " + ", ".join(f"{k} {v}" for k, v in sorted(restarts.items())),
        f"acknowledged images      {len(ledger.acknowledged)} (deleted on purpose "
        f"{len(ledger.deleted)}, "
        f"fetched and checked {checked} through the balancer and each replica)",
        f"lost                     {lost}",
        "outcomes in the history  " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())),
        "usage per key            " + ", ".join(f"{k} {v}/{limits[k]}" for k, v in sorted(usage.items())),
        f"records, each fetched    {records} (through the balancer, sha256 as recorded)",
        f"objects without a record {orphans} (left to the retention sweep)",
        f"violations               {len(violations)}",
    ]
    return table, violations


def _stubs(cluster):
    targets = [("balancer", cluster.balancer.target)] + [(r.name, r.grpc_target) for r in cluster.replicas]
    return [(name, grpc.insecure_channel(t)) for name, t in targets]


def _fetch(stub, image_id: str, key: str) -> bytes:
    return b"".join(c.data for c in stub.GetImageFile(pb.GetImageFileRequest(image_id=image_id),
                                                          metadata=metadata(key), timeout=30))


def _fetch_all(cluster, ledger: Ledger, violations: list[str]) -> tuple[int, int]:
    """Every image a caller was given (and did not delete), through the
    balancer and each replica, with the sha256 it was given."""
    lost, checked = set(), 0
    channels = _stubs(cluster)
    try:
        for image_id, (key, want) in sorted(ledger.acknowledged.items()):
            if image_id in ledger.deleted:
                continue
            checked += 1
            for name, channel in channels:
                try:
                    got = sha256(_fetch(pbg.ImageServiceStub(channel), image_id, key))
                except grpc.RpcError as err:
                    got = f"{err.code().name}"
                if got != want:
                    lost.add(image_id)
                    if len(violations) < 40:
                        violations.append(f"image {image_id} through {name}: {got}, recorded {want}")
    finally:
        for _, channel in channels:
            channel.close()
    return len(lost), checked


def _history(stub, ledger: Ledger, violations: list[str]) -> collections.Counter:
    """Each request that reached the cluster has one final outcome; an
    acknowledged one is `completed` with the images its caller got."""
    statuses: collections.Counter = collections.Counter()
    for rid, key in sorted(ledger.requests.items()):
        try:
            answer = stub.GetRequest(pb.GetRequestRequest(request_id=rid), metadata=metadata(key), timeout=10)
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                statuses["never reached"] += 1
                if rid in ledger.given:
                    violations.append(f"request {rid}: its caller got {ledger.given[rid]}, the history has no "
                                      "record")
                continue
            violations.append(f"request {rid}: history unreadable ({err.code().name})")
            continue
        record = answer.request
        statuses[record.status] += 1
        if record.status not in TERMINAL:
            violations.append(f"request {rid}: left {record.status!r}")
        given = set(ledger.given.get(rid, ()))
        if given and (record.status != "completed" or not given <= set(record.image_ids)):
            violations.append(f"request {rid}: its caller got {sorted(given)} but it is {record.status!r} "
                              f"with {list(record.image_ids)}")
    return statuses


def _all_requests(stub, key: str):
    token = ""
    while True:
        page = stub.ListRequests(pb.ListRequestsRequest(page_size=100, page_token=token, key_name=key),
                                 metadata=metadata(key), timeout=30)
        yield from page.requests
        token = page.next_page_token
        if not token:
            return


def _usage(stub, ledger: Ledger, limits: dict, violations: list[str]) -> dict:
    """Per key, from the store's own records: usage is the images its
    finished requests delivered, never above the limit, and at least what
    its callers were given."""
    usage = {}
    for key in KEYS:
        records = list(_all_requests(stub, key))
        delivered = sum(len(r.image_ids) for r in records if r.status == "completed")
        given = sum(1 for k, _ in ledger.acknowledged.values() if k == key)
        if not records:
            continue
        told = stub.GetRequest(pb.GetRequestRequest(request_id=records[0].request_id), metadata=metadata(key),
                               timeout=10).key_usage.images_today
        usage[key] = told
        if told != delivered:
            violations.append(f"key {key}: usage {told}, but its completed requests delivered {delivered}")
        if told > limits[key]:
            violations.append(f"key {key}: usage {told} above its limit {limits[key]}")
        if delivered < given:
            violations.append(f"key {key}: callers were given {given} images, the records say {delivered}")
    return usage


def _records_have_objects(stub, violations: list[str]) -> int:
    """No record without its object: every stored image of either key (the
    OpenAI calls' too) fetches with the sha256 its record holds."""
    seen = 0
    for key in KEYS:
        token = ""
        while True:
            page = stub.ListImages(pb.ListImagesRequest(page_size=100, page_token=token), metadata=metadata(key),
                                   timeout=30)
            for image in page.images:
                seen += 1
                try:
                    got = sha256(_fetch(stub, image.id, key))
                except grpc.RpcError as err:
                    got = err.code().name
                if got != image.sha256:
                    violations.append(f"record {image.id}: its object gives {got}, the record {image.sha256}")
            token = page.next_page_token
            if not token:
                break
    return seen


def _object_files(cluster) -> list[Path]:
    return [p for p in Path(cluster.objects.blobs).rglob("*") if p.is_file()]


def _objects(cluster, stub, violations: list[str]) -> int:
    """No `.tmp` object is left; an object no key's records name is counted
    (the retention sweep, not run here, is what removes those)."""
    names = {}
    for key in KEYS:
        for record in _all_requests(stub, key):
            for image_id in record.image_ids:
                names[image_id] = key
    orphans = 0
    for path in _object_files(cluster):
        if path.name.startswith(".tmp") or ".tmp-" in path.name:
            violations.append(f"a .tmp object is left: {path.name}")
        elif not any(path.name.startswith(i) for i in names):
            orphans += 1
    return orphans


def _is_probe(pid: int) -> bool:
    """A replica's own readiness probe (`codex login status`, `codex --version`): no run."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return b"login" in argv or b"--version" in argv


def _settled(cluster, timeout: float = 30.0) -> list[str]:
    """No codex process, zombie or work directory on any replica."""
    def leftovers():
        out = []
        for r in cluster.replicas:
            piddir = str(r.directory / "fake-codex-pids")
            runs = [int(n) for n in os.listdir("/proc") if n.isdigit() and int(n) != r.proc.pid
                    and procs.running(int(n))
                    and procs.environ_of(int(n)).get("FAKE_CODEX_PIDDIR") == piddir
                    and not _is_probe(int(n))]
            if runs:
                out.append(f"{r.name}: codex processes {runs[:5]}")
            zombies = procs.zombie_children(r.proc.pid)
            if zombies:
                out.append(f"{r.name}: zombies {zombies[:5]}")
            work = list((r.directory / "state" / "work").glob("*"))
            if work:
                out.append(f"{r.name}: work directories {[p.name for p in work[:3]]}")
        return out
    procs.wait_until(lambda: not leftovers(), timeout, interval=0.5)
    return leftovers()


def _corrupt_one(cluster, ledger: Ledger) -> None:
    """The deliberately broken invariant: one acknowledged image's stored
    bytes no longer match the sha256 recorded for it (as if the check before
    recording had been skipped), in the object store and every replica's cache."""
    live = sorted(i for i in ledger.acknowledged if i not in ledger.deleted)
    if not live:
        return
    victim = live[0]
    roots = [Path(cluster.objects.blobs)] + [r.directory for r in cluster.replicas]
    for root in roots:
        for path in root.rglob(f"{victim}*"):
            if path.is_file():
                path.write_bytes(path.read_bytes()[:-1] + b"\x00")
