"""One chaos run: `make cluster`'s pieces (3 replicas, the fake codex at 1 s
per candidate, PostgreSQL, s3proxy, HAProxy), supervised; the workload and
the nemesis at once until both have done their share; then heal, settle and
check every invariant. Loopback only; bounded by `max_s` and by the counts.

The replicas share two Codex accounts with small budgets (ACCOUNTS), so the
budget binds under the workload and the check that no account ran more than
its budget at once (from PostgreSQL's own record of every run) means
something; and a short unrecorded-object age, so the retention sweep runs
before objects and records are compared."""

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
import psycopg
from codex_image_cluster.cluster import Cluster
from codex_image_server.store.s3 import SKIP_CHECK_VARIABLE
from codeximage.v1 import image_service_pb2 as pb, image_service_pb2_grpc as pbg

from tests.support import account_runs, procs
from tests.support.server_proc import FAKE_CODEX_ENV, fake_codex_launcher

from .nemesis import Nemesis, wait_healed
from .workload import KEYS, Ledger, Workload, key_secret, metadata, sha256

CHECK_MS = 500  # HAProxy's health check; a SIGSTOP lasts longer than two of them
TERMINAL = {"completed", "failed", "cancelled", "refused"}
# Runs at once on each account, across every replica: 4 in all, under 6
# callers, so candidates wait for an account and the budget is reached.
ACCOUNTS = {"north": 2, "south": 2}
# Older than any upload still on its way to its record (a 5 s database wait,
# a 2 s SIGSTOP), short enough for the check to wait for its sweep.
UNRECORDED_AGE_S = 20
SWEEP_MS = 1000


@dataclasses.dataclass(frozen=True)
class Plan:
    seed: int
    generations: int = 400
    faults: int = 25
    workers: int = 6
    max_s: float = 900.0
    gap_s: tuple = (1.0, 5.0)
    # The deliberately broken invariant: replicas skip their sha256 checks
    # (s3.SKIP_CHECK_VARIABLE), so the damaged cached copies the nemesis
    # leaves are served; the run must then fail.
    skip_sha256_check: bool = False


def _cluster(directory: Path, limits: dict, skip_sha256_check: bool) -> Cluster:
    keys = directory / "keys.json"
    directory.mkdir(parents=True, exist_ok=True)
    keys.write_text(
        json.dumps(
            {
                "keys": [
                    {
                        "name": name,
                        "sha256": hashlib.sha256(key_secret(name).encode()).hexdigest(),
                        "images_per_day": limits[name],
                    }
                    for name in KEYS
                ]
            }
        )
    )
    fake = fake_codex_launcher(directory)
    env = {
        "CODEX_IMAGE_SERVER_KEYS_FILE": str(keys),
        "FAKE_CODEX_DELAY": "1",
        **FAKE_CODEX_ENV,
        "CODEX_IMAGE_SERVER_RETENTION_UNRECORDED_AGE_S": str(UNRECORDED_AGE_S),
        "CODEX_IMAGE_SERVER_RETENTION_INTERVAL_MS": str(SWEEP_MS),
    }
    if skip_sha256_check:
        env[SKIP_CHECK_VARIABLE] = "1"
    c = Cluster(directory / "c", replicas=3, codex_bin=str(fake), check_ms=CHECK_MS, env=env)
    for replica in c.replicas:
        replica.codex_home.mkdir(parents=True, exist_ok=True)
        (replica.codex_home / "auth.json").write_text('{"fake": true}')
        replica.extra_env["FAKE_CODEX_PIDDIR"] = str(replica.directory / "fake-codex-pids")
        # Each replica its own copy of each account's login, under the same NAME: one budget.
        homes = []
        for name, budget in ACCOUNTS.items():
            home = replica.directory / f"home-{name}"
            home.mkdir(parents=True, exist_ok=True)
            (home / "auth.json").write_text('{"fake": true}')
            homes.append(f"{name}:{budget}={home}")
        replica.extra_env["CODEX_IMAGE_SERVER_ACCOUNTS"] = "\n".join(homes)
    return c


def cache_dir(replica) -> Path:
    """Where a replica keeps its copies of objects (store.backends: <state>/object-cache)."""
    return replica.directory / "state" / "object-cache"


def run(plan: Plan, report=print) -> tuple[list[str], list[str]]:
    """(the table's lines, the violations)."""
    directory = Path(tempfile.mkdtemp(prefix=f"chaos-{plan.seed}-", dir="/tmp"))
    # Two keys, half the calls each: alpha reaches its limit on the way, and
    # the calls go on with beta, whose limit is out of reach.
    limits = {"alpha": int(plan.generations * 0.3), "beta": plan.generations * 2}
    cluster = _cluster(directory, limits, plan.skip_sha256_check)
    rng = random.Random(plan.seed)
    ledger = Ledger()
    started = time.monotonic()
    with cluster:
        cluster.supervise(emit=lambda line: report(json.dumps(line)))
        bad = wait_healed(cluster, 60)
        if bad:
            return [], [f"the cluster did not come up: {bad}"]
        workload = Workload(cluster.balancer.target, cluster.balancer.http_base, plan.seed, ledger)
        nemesis = Nemesis(
            cluster,
            random.Random(rng.random()),
            plan.gap_s,
            hang_s=4 * CHECK_MS / 1000,
            limit=plan.faults,
            live_images=ledger.live,
            cache_dir=cache_dir,
        ).start()
        seeds = [rng.random() for _ in range(plan.workers)]

        def enough() -> bool:
            return (ledger.answered_ok >= plan.generations and nemesis.total >= plan.faults) or len(
                ledger.exhausted
            ) == len(KEYS)

        def worker(i: int) -> None:
            r = random.Random(seeds[i])
            while not enough() and time.monotonic() - started < plan.max_s:
                workload.one(r)

        threads = [
            threading.Thread(target=worker, args=(i,), daemon=True) for i in range(plan.workers)
        ]
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
        violations += _settled(cluster)
        lost, checked = _fetch_all(cluster, ledger, violations)
        history = _history(workload.stub, ledger, cluster, violations)
        usage = _usage(workload.stub, ledger, limits, violations)
        records = _records_have_objects(workload.stub, violations)
        unrecorded = _unrecorded_swept(cluster, violations)
        budgets = _account_budgets(cluster, violations)
        workload.close()
        restarts = collections.Counter(line["process"] for line in cluster.supervisor.events)
    if ledger.answered_ok < plan.generations or nemesis.total < plan.faults:
        violations.append(
            f"bounded out after {took:.0f} s: {ledger.answered_ok} generations answered with "
            f"an image, {nemesis.total} faults"
        )
    ids = ledger.by_surface
    table = [
        f"seed                     {plan.seed}"
        + ("  (sha256 checks SKIPPED: must fail)" if plan.skip_sha256_check else ""),
        f"took                     {took:.0f} s",
        f"generations              {ledger.generations}: answered with an image "
        f"{ledger.answered_ok}, "
        f"with an error {ledger.answered_error} (not counted: refused for the key's daily limit "
        f"{ledger.refused_for_limit}; keys at their limit: {sorted(ledger.exhausted)})",
        "  by surface             "
        + ", ".join(f"{k} {v[0]} with an image/{v[1]} calls" for k, v in sorted(ids.items())),
        f"reads, deletes           {ledger.reads}, {ledger.deletes}",
        f"faults                   {nemesis.total}: "
        + ", ".join(f"{k} {v}" for k, v in sorted(nemesis.injected.items())),
        "restarts                 " + ", ".join(f"{k} {v}" for k, v in sorted(restarts.items())),
        f"acknowledged images      {len(ledger.acknowledged)} (gRPC and /v1, which name their "
        "images; one each; of them seen on a gRPC stream that then broke "
        f"{ledger.told_then_broken}; deleted on purpose since {len(ledger.deleted)})",
        f"  fetched and checked    {checked} through the balancer and each replica "
        "(the acknowledged, not deleted)",
        f"lost                     {lost}",
        f"gRPC and /v1 requests    {len(ledger.requests)}, in the history (newest row of each id): "
        + ", ".join(f"{k} {v}" for k, v in sorted(history["statuses"].items())),
        f"  completed              {history['statuses'].get('completed', 0)} = answered "
        f"with its image {history['given']} + answer lost on the way "
        f"{history['completed_unanswered']}",
        f"  records per request    at most {history['most_rows']} (rows sharing a request id: "
        f"{history['shared_rows']}; a request HAProxy retried on another replica)",
        "usage per key            "
        + ", ".join(f"{k} {v}/{limits[k]}" for k, v in sorted(usage.items()))
        + " (images today/daily limit; = the images its completed requests delivered, "
        "OpenAI calls included)",
        f"records, each fetched    {records} (through the balancer, sha256 as recorded)",
        f"objects without a record {unrecorded['before']} after the faults; "
        f"{unrecorded['after']} after the retention sweep (waited {unrecorded['waited']:.0f} s); "
        f".tmp objects {unrecorded['tmp']}; swept by the replicas {unrecorded['during']} during "
        f"the run, {unrecorded['by_sweep']} after it",
        "account runs             "
        + ", ".join(
            f"{name} {budgets['most'].get(name, 0)}/{budget} at most at once "
            f"({budgets['runs'].get(name, 0)} runs)"
            for name, budget in ACCOUNTS.items()
        )
        + " (from PostgreSQL's account_run_log)",
        f"violations               {len(violations)}",
    ]
    return table, violations


def _stubs(cluster):
    targets = [("balancer", cluster.balancer.target)] + [
        (r.name, r.grpc_target) for r in cluster.replicas
    ]
    return [(name, grpc.insecure_channel(t)) for name, t in targets]


def _fetch(stub, image_id: str, key: str) -> bytes:
    return b"".join(
        c.data
        for c in stub.GetImageFile(
            pb.GetImageFileRequest(image_id=image_id), metadata=metadata(key), timeout=30
        )
    )


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
                        violations.append(
                            f"image {image_id} through {name}: {got}, recorded {want}"
                        )
    finally:
        for _, channel in channels:
            channel.close()
    return len(lost), checked


def _query(cluster, sql: str, args=()) -> list:
    """The store's own records, read straight from PostgreSQL."""
    with psycopg.connect(cluster.postgres.url, connect_timeout=10) as conn:
        return conn.execute(sql, args).fetchall()


def _history(stub, ledger: Ledger, cluster, violations: list[str]) -> dict:
    """Each request that reached the cluster has one final outcome; an
    acknowledged one is `completed` with the images its caller got. Also how
    the numbers meet: completed = answered with its image + completed whose
    answer was lost on the way (a replica or connection cut after the record
    was written), and how many request ids have more than one row (HAProxy
    sends a request whose replica died before answering to another one)."""
    statuses: collections.Counter = collections.Counter()
    completed_unanswered = 0
    for rid, key in sorted(ledger.requests.items()):
        try:
            answer = stub.GetRequest(
                pb.GetRequestRequest(request_id=rid), metadata=metadata(key), timeout=10
            )
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                statuses["no record"] += (
                    1  # refused before it was recorded (database down), or never reached a replica
                )
                if rid in ledger.given:
                    violations.append(
                        f"request {rid}: its caller got {ledger.given[rid]}, the history has no "
                        "record"
                    )
                continue
            violations.append(f"request {rid}: history unreadable ({err.code().name})")
            continue
        record = answer.request
        statuses[record.status] += 1
        if record.status not in TERMINAL:
            violations.append(f"request {rid}: left {record.status!r}")
        given = set(ledger.given.get(rid, ()))
        if given and (record.status != "completed" or not given <= set(record.image_ids)):
            violations.append(
                f"request {rid}: its caller got {sorted(given)} but it is {record.status!r} "
                f"with {list(record.image_ids)}"
            )
        if record.status == "completed" and not given:
            completed_unanswered += 1
    rows = dict(_query(cluster, "SELECT request_id, count(*) FROM requests GROUP BY request_id"))
    ours = [rows.get(rid, 0) for rid in ledger.requests]
    for rid in ledger.requests:
        finals = (
            _query(
                cluster,
                "SELECT status FROM requests WHERE request_id = %s AND status = 'completed'",
                (rid,),
            )
            if rows.get(rid, 0) > 1
            else []
        )
        if len(finals) > 1:
            violations.append(
                f"request {rid}: completed {len(finals)} times (one request, two outcomes)"
            )
    return {
        "statuses": statuses,
        "given": len(ledger.given),
        "completed_unanswered": completed_unanswered,
        "most_rows": max(ours, default=0),
        "shared_rows": sum(1 for n in ours if n > 1),
    }


def _all_requests(stub, key: str):
    token = ""
    while True:
        page = stub.ListRequests(
            pb.ListRequestsRequest(page_size=100, page_token=token, key_name=key),
            metadata=metadata(key),
            timeout=30,
        )
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
        given = sum(
            len(ids) for rid, ids in ledger.given.items() if ledger.requests.get(rid) == key
        )
        if not records:
            continue
        told = stub.GetRequest(
            pb.GetRequestRequest(request_id=records[0].request_id),
            metadata=metadata(key),
            timeout=10,
        ).key_usage.images_today
        usage[key] = told
        if told != delivered:
            violations.append(
                f"key {key}: usage {told}, but its completed requests delivered {delivered}"
            )
        if told > limits[key]:
            violations.append(f"key {key}: usage {told} above its limit {limits[key]}")
        if delivered < given:
            violations.append(
                f"key {key}: callers were given {given} images, the records say {delivered}"
            )
    return usage


def _records_have_objects(stub, violations: list[str]) -> int:
    """No record without its object: every stored image of either key (the
    OpenAI calls' too) fetches with the sha256 its record holds."""
    seen = 0
    for key in KEYS:
        token = ""
        while True:
            page = stub.ListImages(
                pb.ListImagesRequest(page_size=100, page_token=token),
                metadata=metadata(key),
                timeout=30,
            )
            for image in page.images:
                seen += 1
                try:
                    got = sha256(_fetch(stub, image.id, key))
                except grpc.RpcError as err:
                    got = err.code().name
                if got != image.sha256:
                    violations.append(
                        f"record {image.id}: its object gives {got}, the record {image.sha256}"
                    )
            token = page.next_page_token
            if not token:
                break
    return seen


def _object_files(cluster) -> list[tuple[str, Path]]:
    """(where, file) of every object: the object store's and each replica's cached copies."""
    roots = [("object store", Path(cluster.objects.blobs))] + [
        (r.name, cache_dir(r)) for r in cluster.replicas
    ]
    return [
        (where, p) for where, root in roots if root.exists() for p in root.rglob("*") if p.is_file()
    ]


def _unrecorded_swept(cluster, violations: list[str]) -> dict:
    """No object without its record, after the retention sweep: objects
    (in the store and in replicas' caches) whose image id no record in
    PostgreSQL holds are counted, then waited for until the sweepers (every
    SWEEP_MS, for objects older than UNRECORDED_AGE_S) have removed them.
    No `.tmp` object is left anywhere."""

    def scan():
        recorded = {row[0] for row in _query(cluster, "SELECT id FROM images")}
        tmp, unrecorded = [], []
        for where, path in _object_files(cluster):
            if path.name.startswith(".tmp") or ".tmp-" in path.name:
                tmp.append(f"{where}: {path.name}")
            elif path.name.startswith("img_") and path.name.split(".")[0] not in recorded:
                unrecorded.append(f"{where}: {path.name}")
        return tmp, unrecorded

    started = time.monotonic()
    tmp, before = scan()
    swept_during_run = _swept_so_far(cluster)
    unrecorded = before
    deadline = started + UNRECORDED_AGE_S + 20 * SWEEP_MS / 1000
    while unrecorded and time.monotonic() < deadline:
        time.sleep(SWEEP_MS / 1000)
        tmp, unrecorded = scan()
    violations += [f"a .tmp object is left: {t}" for t in tmp]
    violations += [
        f"an object without a record is left after the sweep: {u}" for u in unrecorded[:10]
    ]
    return {
        "before": len(before),
        "after": len(unrecorded),
        "tmp": len(tmp),
        "waited": time.monotonic() - started,
        "during": swept_during_run,
        "by_sweep": _swept_so_far(cluster) - swept_during_run,
    }


def _swept_so_far(cluster) -> int:
    """Objects the replicas' sweepers deleted for want of a record (their `retention.swept`
    log lines)."""
    swept = 0
    for replica in cluster.replicas:
        for line in replica.log_path.read_text(errors="replace").splitlines():
            if '"retention.swept"' in line:
                try:
                    swept += json.loads(line).get("unrecorded", 0)
                except ValueError:
                    continue
    return swept


def _account_budgets(cluster, violations: list[str]) -> dict:
    """No account ran more than its budget at once, across every replica,
    from PostgreSQL's own record of each run (taken, ended); every run ended."""
    runs = account_runs.read(cluster.postgres.url)
    most = account_runs.most_at_once(runs)
    for name, budget in ACCOUNTS.items():
        if most.get(name, 0) > budget:
            violations.append(f"account {name}: {most[name]} runs at once, its budget is {budget}")
            for run in account_runs.at_the_peak(runs, name):
                violations.append(
                    f"  {name} on {run.replica.rsplit('/', 2)[-2]}: "
                    f"taken {run.taken_at:%H:%M:%S.%f}, "
                    f"ended {run.ended_at and f'{run.ended_at:%H:%M:%S.%f}'} ({run.ended_by})"
                )
    unknown = sorted({r.account for r in runs} - set(ACCOUNTS))
    if unknown:
        violations.append(f"runs on accounts not configured: {unknown}")
    for run in runs:
        if run.ended_at is None:
            violations.append(
                f"account {run.account}: a run taken at {run.taken_at} on {run.replica} never ended"
            )
    return {"most": most, "runs": collections.Counter(r.account for r in runs)}


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
            runs = [
                int(n)
                for n in os.listdir("/proc")
                if n.isdigit()
                and int(n) != r.proc.pid
                and procs.running(int(n))
                and procs.environ_of(int(n)).get("FAKE_CODEX_PIDDIR") == piddir
                and not _is_probe(int(n))
            ]
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
