"""What several replicas behind HAProxy give and cost.

    .venv/bin/python bench/cluster_bench.py [--runs 3] [--requests-per-replica 60] [--in-flight 20]

With the fake codex (fixed 1 s per candidate) and 4 slots per replica, the
replicas sharing PostgreSQL and s3proxy as `make cluster` runs them:
1. Throughput through the balancer with 1, 2 and 3 replicas: N x
   --requests-per-replica Generate calls (count=1) for N replicas, kept
   --in-flight at a time, images per second; ratio to one replica (target
   >= 2.7 at three). Calls in proportion to the slots: every configuration
   runs the same number of waves (15 by default), so the ramp-up and the
   drain at the end (slots idle while the last calls finish) weigh the same
   in each; a fixed 60 calls were 15 waves on one replica but 5 on three,
   which understated three replicas by ~10%. The in-flight default, 20, is more
   than three replicas' 12 slots, so every configuration has a queue and no
   slot waits for the client's next call (at 12, three replicas' slots idle
   between calls while one replica's never do, which understates scaling),
   and no more than one replica takes (4 slots + 16 waiting). With each,
   the CPU seconds per image of every process class (the replicas, their
   codex runs, HAProxy, PostgreSQL and s3proxy, this load generator): on a
   small machine the replicas' slots wait for CPU, not for each other.
2. The balancer's added latency per request: GetCapabilities through HAProxy
   vs. straight to a replica, median of 300 calls each.
3. The balancer's cost per MB fetched: GetImageFile of a ~12 MB image through
   HAProxy (its one backend the replica that made it) vs. straight to that
   replica, median of --runs.
4. The shared stores' cost (PostgreSQL + s3proxy on loopback vs. SQLite and
   files): per Generate (a ~3 MB image uploaded, checked and recorded), and
   per MB fetched by a replica that did not make the image (first read:
   download, sha256 check, then streamed) and again (from its cache).
Medians over --runs within one run of this script; the throughput runs
interleaved (1, 2, 3, 1, 2, 3, ...).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import grpc
from codex_image_cluster.balancer import Balancer
from codex_image_cluster.cluster import Cluster, shared_stores_supported
from codex_image_cluster.replica import Replica
from codeximage.v1 import (
    image_service_pb2 as pb,
    image_service_pb2_grpc as pbg,
)

from tests.support.server_proc import fake_codex_launcher

OPTIONS = [("grpc.max_receive_message_length", 128 * 1024 * 1024)]
CLASS_NAMES = {
    "replica": "replica servers",
    "replica children": "their codex runs",
    "stores": "PostgreSQL+s3proxy",
    "stores children": "PostgreSQL backends",
}


def generate(stub, prompt: str) -> pb.Image:
    image = None
    for event in stub.Generate(pb.GenerateRequest(prompt=prompt), timeout=120):
        if event.WhichOneof("event") == "image":
            image = event.image
    return image


async def _generate_async(stub, prompt: str) -> pb.Image:
    image = None
    async for event in stub.Generate(pb.GenerateRequest(prompt=prompt), timeout=120):
        if event.WhichOneof("event") == "image":
            image = event.image
    return image


async def _throughput(target: str, requests: int, in_flight: int) -> float:
    async with grpc.aio.insecure_channel(target, options=OPTIONS) as channel:
        stub = pbg.ImageServiceStub(channel)
        numbers = iter(range(requests))
        images = []

        async def caller() -> None:
            for i in numbers:
                images.append(await _generate_async(stub, f"bench {i} [[fake delay=1]]"))

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(in_flight)))
        took = time.perf_counter() - started
    assert len(images) == requests and all(images), "a generation failed"
    return requests / took


def throughput(target: str, requests: int, in_flight: int) -> float:
    """Images per second with `in_flight` calls at a time; one channel, as a
    client would. One asyncio thread, not a thread per call: the load
    generator shares the machine's two cores with what it measures (20
    threads cost ~8.5 ms of CPU per image, this ~4.5 ms)."""
    return asyncio.run(_throughput(target, requests, in_flight))


def cpu_s(roots: dict[int, str]) -> dict[str, float]:
    """CPU seconds by class: each root process's own time under its class
    (e.g. "replicas"), its reaped children's and its living descendants'
    under "<class> children" (a replica's are its codex runs; PostgreSQL's
    its backends). The load generator (this process) counts only its own."""
    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(name)] = (
                int(fields[1]),
                [int(x) for x in fields[11:15]],
            )  # ppid; utime stime cutime cstime
    totals: dict[str, float] = {}
    for pid, (_, times) in stats.items():
        ancestor = pid
        while ancestor in stats and ancestor not in roots:
            ancestor = stats[ancestor][0]
        if ancestor not in roots:
            continue
        kind = roots[ancestor]
        if pid == ancestor:
            totals[kind] = totals.get(kind, 0) + sum(times[:2]) / tick
            if pid != os.getpid():  # ours: the stopped balancers of earlier rounds
                totals[f"{kind} children"] = (
                    totals.get(f"{kind} children", 0) + sum(times[2:]) / tick
                )
        else:
            totals[f"{kind} children"] = totals.get(f"{kind} children", 0) + sum(times[:2]) / tick
    return totals


def unary_ms(target: str, calls: int = 300) -> float:
    with grpc.insecure_channel(target) as channel:
        stub = pbg.ImageServiceStub(channel)
        for _ in range(20):
            stub.GetCapabilities(pb.GetCapabilitiesRequest(), timeout=5)
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            stub.GetCapabilities(pb.GetCapabilitiesRequest(), timeout=5)
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def fetch_s(target: str, image_id: str) -> tuple[float, int]:
    with grpc.insecure_channel(target, options=OPTIONS) as channel:
        stub = pbg.ImageServiceStub(channel)
        t0 = time.perf_counter()
        size = sum(
            len(c.data)
            for c in stub.GetImageFile(pb.GetImageFileRequest(image_id=image_id), timeout=60)
        )
        return time.perf_counter() - t0, size


def timed_generate(target: str, prompt: str) -> tuple[float, pb.Image]:
    with grpc.insecure_channel(target, options=OPTIONS) as channel:
        t0 = time.perf_counter()
        image = generate(pbg.ImageServiceStub(channel), prompt)
        return time.perf_counter() - t0, image


def logged_in(replica) -> None:
    replica.codex_home.mkdir(parents=True, exist_ok=True)
    (replica.codex_home / "auth.json").write_text('{"fake": true}')


def store_costs(directory: Path, fake: Path, runs: int) -> None:
    shared = Cluster(directory / "stores", replicas=2, codex_bin=str(fake))
    plain = Replica(
        "plain", directory / "plain", codex_bin=str(fake), codex_home=directory / "plain" / "home"
    )
    for replica in [*shared.replicas, plain]:
        logged_in(replica)
    with shared:
        plain.start()
        try:
            maker, reader = shared.replicas
            small = "store [[fake delay=0.05 noise=1 size=1024x1024]]"
            for target in (maker.grpc_target, plain.grpc_target):  # warm both paths
                timed_generate(target, small)
            gen_shared = [timed_generate(maker.grpc_target, small)[0] for _ in range(max(5, runs))]
            gen_plain = [timed_generate(plain.grpc_target, small)[0] for _ in range(max(5, runs))]
            s, p = statistics.median(gen_shared), statistics.median(gen_plain)
            print(
                f"Generate (~3 MB image) median: {s * 1000:.0f} ms on PostgreSQL+S3 vs "
                f"{p * 1000:.0f} ms on "
                f"SQLite+files (+{(s - p) * 1000:.0f} ms per request)"
            )
            big = "store big [[fake delay=0.05 noise=1 size=2048x2048]]"
            cold, warm, local = [], [], []
            for _ in range(max(3, runs)):
                _, image = timed_generate(maker.grpc_target, big)
                cold.append(fetch_s(reader.grpc_target, image.id)[0])
                warm.append(fetch_s(reader.grpc_target, image.id)[0])
                _, own = timed_generate(plain.grpc_target, big)
                t_local, size = fetch_s(plain.grpc_target, own.id)
                local.append(t_local)
            mb = size / 1e6
            c, w, lo = statistics.median(cold), statistics.median(warm), statistics.median(local)
            print(
                f"GetImageFile {mb:.1f} MB from another replica: first {c * 1000:.0f} ms "
                f"(+{(c - lo) * 1000 / mb:.1f} ms per MB over a local file, {lo * 1000:.0f} ms), "
                f"then {w * 1000:.0f} ms from its cache (+{(w - lo) * 1000 / mb:.1f} ms per MB)"
            )
        finally:
            plain.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests-per-replica", type=int, default=60)
    parser.add_argument(
        "--requests",
        type=int,
        default=0,
        help="the same number of calls for every replica count instead (the old shape: 60)",
    )
    parser.add_argument("--in-flight", type=int, default=20)
    parser.add_argument(
        "--no-throughput", action="store_true", help="skip the 1/2/3-replica throughput"
    )
    parser.add_argument(
        "--no-stores",
        action="store_true",
        help="replicas on their own SQLite and files (the balancer alone, for comparison)",
    )
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="cluster-bench-"))
    fake = fake_codex_launcher(directory)
    # The cluster as `make cluster` runs it: PostgreSQL and the object store
    # shared (anonymous calls: no key to admit, the implicit account each
    # replica's own).
    cluster = Cluster(
        directory / "c",
        replicas=3,
        codex_bin=str(fake),
        args=["--max-concurrent", "4"],
        with_stores=shared_stores_supported() and not args.no_stores,
    )
    for replica in cluster.replicas:
        replica.codex_home.mkdir(parents=True, exist_ok=True)
        (replica.codex_home / "auth.json").write_text('{"fake": true}')
    with cluster:
        rates = {}
        counts = () if args.no_throughput else (1, 2, 3)
        balancers = {
            n: Balancer(
                directory / f"lb{n}",
                [(r.name, r.grpc_port, r.http_port) for r in cluster.replicas[:n]],
            )
            for n in counts
        }
        runs = {n: [] for n in counts}
        spent = {n: {} for n in counts}  # CPU seconds by class
        loads = {n: [] for n in counts}
        try:
            for lb in balancers.values():
                lb.start()
            time.sleep(1.0)  # first health checks
            # Interleaved (1, 2, 3, 1, 2, 3, ...): the machine's other work
            # then weighs on every replica count alike, not on whichever ran
            # while it was busiest.
            for _ in range(args.runs):
                for n, lb in balancers.items():
                    roots = {
                        os.getpid(): "load generator",
                        lb.proc.pid: "haproxy",
                        **{r.pid: "replica" for r in cluster.replicas[:n]},
                        **{r.pid: "idle replica" for r in cluster.replicas[n:]},
                        **{pid: "stores" for pid in cluster.store_pids()},
                    }
                    before = cpu_s(roots)
                    loads[n].append(os.getloadavg()[0])
                    runs[n].append(
                        throughput(
                            lb.target,
                            args.requests or n * args.requests_per_replica,
                            args.in_flight,
                        )
                    )
                    for kind, seconds in cpu_s(roots).items():
                        spent[n][kind] = spent[n].get(kind, 0) + seconds - before.get(kind, 0)
        finally:
            for lb in balancers.values():
                lb.stop()
        for n in counts:
            rates[n] = statistics.median(runs[n])
            images = (args.requests or n * args.requests_per_replica) * args.runs
            per_class = {k: v / images for k, v in spent[n].items()}
            print(
                f"{n} replica(s): {rates[n]:.2f} images/s (runs "
                f"{', '.join(f'{r:.2f}' for r in runs[n])}), "
                f"{rates[n] / rates[1]:.2f}x one replica; {sum(per_class.values()):.3f} CPU-s "
                "per image over "
                "every process (load average before each run: "
                f"{', '.join(f'{x:.1f}' for x in loads[n])}): "
                + ", ".join(
                    f"{CLASS_NAMES.get(k, k)} {v:.3f}"
                    for k, v in sorted(per_class.items())
                    if v >= 0.0005
                ),
                flush=True,
            )

        lb = cluster.balancer
        direct = cluster.replicas[0]
        via, straight = unary_ms(lb.target), unary_ms(direct.grpc_target)
        # HAProxy's cost per MB: through a balancer whose one backend is the
        # replica that made the image (its bytes local), vs. straight to it.
        lb = Balancer(
            directory / "lb-fetch", [(direct.name, direct.grpc_port, direct.http_port)]
        ).start()
        try:  # stopped whatever happens (a closed stdout included): it is not part of the cluster
            time.sleep(1.0)  # first health checks
            print(
                f"GetCapabilities median: {via:.2f} ms through HAProxy vs {straight:.2f} ms direct "
                f"(+{via - straight:.2f} ms per request)"
            )

            with grpc.insecure_channel(direct.grpc_target, options=OPTIONS) as channel:
                image = generate(
                    pbg.ImageServiceStub(channel), "big [[fake delay=0.1 noise=1 size=2048x2048]]"
                )
            fetch_via, fetch_direct = [], []
            for _ in range(max(3, args.runs)):
                t_direct, size = fetch_s(direct.grpc_target, image.id)
                fetch_via.append(fetch_s(lb.target, image.id)[0])
                fetch_direct.append(t_direct)
        finally:
            lb.stop()
        mb = size / 1e6
        d = statistics.median(fetch_direct)
        print(f"GetImageFile {mb:.1f} MB direct: {d * 1000:.0f} ms ({mb / d:.0f} MB/s)")
        v = statistics.median(fetch_via)
        print(
            f"GetImageFile {mb:.1f} MB through HAProxy: {v * 1000:.0f} ms ({mb / v:.0f} MB/s), "
            f"+{(v - d) * 1000 / mb:.1f} ms per MB"
        )
    if shared_stores_supported() and not args.no_stores:
        store_costs(directory, fake, args.runs)


if __name__ == "__main__":
    main()
