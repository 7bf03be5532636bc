"""What the gRPC service adds on top of codex itself.

    .venv/bin/python bench/service_bench.py [--runs 7] [--cancel-runs 50]

All with the fake codex (tests/support/fake_codex.py), so codex's own cost is
a known constant and only ours varies:
1. Service overhead: Generate count=1 with a fake that takes 1 s, median wall
   time through gRPC, and through the HTTP shim (POST /v1/images/generate),
   / the same fake run directly (goal <= 1.01: the service's own cost lost in codex's). Beside
   it, the stack's floor: a bare grpc.aio server (and a bare aiohttp one) that runs
   the same fake and ends with as many messages as ours, no more
   (bench/bare_servers.py grpcrun / httprun), / direct.
2. Parallel candidates: count=4 / count=1 wall time, same fake (goal <= 1.10),
   beside its floor: four direct runs side by side / one.
3. Cancellation: client cancel -> last process of the request gone (pid and
   process group looked up in /proc), p50 and p99 over --cancel-runs runs with
   a fake that obeys SIGTERM (goal p99 <= 50 ms).
Each ratio is measured within one run of this script; medians over --runs.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import grpc
from codeximage.v1 import image_service_pb2 as pb

from tests.support import procs
from tests.support.server_proc import fake_codex_launcher, start_server

sys.path.insert(0, str(ROOT / "bench"))
from core_bench import bare

DELAY_S = 1.0


def fake_argv(codex: Path, workdir: Path, prompt: str) -> list[str]:
    return [
        str(codex),
        "exec",
        "--json",
        "--skip-git-repo-check",
        "--sandbox",
        "read-only",
        "--cd",
        str(workdir),
        "--",
        prompt,
    ]


def direct_run(codex: Path, codex_home: Path, workdir: Path, count: int = 1) -> float:
    """The fake codex run the way the engine runs it, minus the service;
    `count` of them side by side (the floor for count 4 / count 1: four
    starts of the fake share the machine's cores with or without us)."""
    env = dict(os.environ, CODEX_HOME=str(codex_home))
    started = time.perf_counter()
    runs = [
        subprocess.Popen(
            fake_argv(codex, workdir, f"candidate {i + 1} of {count} [[fake delay={DELAY_S}]]"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=workdir,
        )
        for i in range(count)
    ]
    for run in runs:
        run.communicate()
        assert run.returncode == 0, run.returncode
    return time.perf_counter() - started


def service_run(stub, count: int) -> float:
    started = time.perf_counter()
    responses = list(
        stub.Generate(
            pb.GenerateRequest(prompt=f"x [[fake delay={DELAY_S}]]", count=count), timeout=60
        )
    )
    elapsed = time.perf_counter() - started
    assert responses[-1].WhichOneof("event") == "summary"
    return elapsed


def bare_grpc_run(generate) -> float:
    started = time.perf_counter()
    assert len(list(generate(b"", timeout=60))) == 3
    return time.perf_counter() - started


def http_run(port: int) -> float:
    body = json.dumps({"prompt": f"x [[fake delay={DELAY_S}]]"}).encode()
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request(
        "POST", "/v1/images/generate", body=body, headers={"Content-Type": "application/json"}
    )
    reply = conn.getresponse()
    reply.read()
    conn.close()
    elapsed = time.perf_counter() - started
    assert reply.status == 200, reply.status
    return elapsed


def cancel_latency(srv, stub, i: int) -> float:
    rid = f"bench-cancel-{i}"
    call = stub.Generate(
        pb.GenerateRequest(prompt="x [[fake delay=30 child=1]]", count=4, request_id=rid)
    )
    assert procs.wait_until(
        lambda: (
            len(srv.runs_of(rid)) == 4
            and all(procs.running(r["child_pid"]) for r in srv.runs_of(rid))
        ),
        timeout=20,
    )
    runs = srv.runs_of(rid)
    started = time.perf_counter()
    call.cancel()
    while not procs.all_gone(runs):
        if time.perf_counter() - started > 10:
            raise AssertionError(f"request {rid} still has processes 10 s after cancel")
        time.sleep(0.001)
    return time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--cancel-runs", type=int, default=50)
    parser.add_argument(
        "--no-finish-early",
        action="store_true",
        help="the server waits for the fake to exit, as direct does: the service's own cost alone "
        "(with finish early it may stop the fake before its exit and beat direct)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        direct_home, workdir = tmp / "direct-home", tmp / "work"
        direct_home.mkdir()
        workdir.mkdir()
        codex = fake_codex_launcher(tmp)  # the same launcher the server gets
        bare_argv = json.dumps(fake_argv(codex, workdir, f"x [[fake delay={DELAY_S}]]"))
        bare_env = dict(os.environ, CODEX_HOME=str(direct_home))
        with (
            start_server(
                tmp, http=True, args=["--no-finish-early"] if args.no_finish_early else []
            ) as srv,
            bare("grpcrun", bare_argv, env=bare_env) as grpc_port,
            bare("httprun", bare_argv, env=bare_env) as bare_http_port,
        ):
            stub = srv.stub()
            channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
            bare_generate = channel.unary_stream("/codeximage.v1.ImageService/Generate")
            service_run(stub, 1)  # warm up the channels and the servers
            http_run(srv.http_port)
            bare_grpc_run(bare_generate)
            http_run(bare_http_port)
            direct, direct4, one, four, via_http, bare_grpc, bare_http = [], [], [], [], [], [], []
            for _ in range(args.runs):  # interleaved, so load drift hits all alike
                direct.append(direct_run(codex, direct_home, workdir))
                one.append(service_run(stub, 1))
                bare_grpc.append(bare_grpc_run(bare_generate))
                via_http.append(http_run(srv.http_port))
                bare_http.append(http_run(bare_http_port))
                four.append(service_run(stub, 4))
                direct4.append(direct_run(codex, direct_home, workdir, 4))
            channel.close()
            cancels = [cancel_latency(srv, stub, i) for i in range(args.cancel_runs)]
    result = {
        "direct_median_s": statistics.median(direct),
        "service_count1_median_s": statistics.median(one),
        "service_count4_median_s": statistics.median(four),
        "overhead_ratio": statistics.median(one) / statistics.median(direct),
        "http_count1_median_s": statistics.median(via_http),
        "http_overhead_ratio": statistics.median(via_http) / statistics.median(direct),
        "bare_grpc_median_s": statistics.median(bare_grpc),
        "bare_grpc_ratio": statistics.median(bare_grpc) / statistics.median(direct),
        "bare_http_median_s": statistics.median(bare_http),
        "bare_http_ratio": statistics.median(bare_http) / statistics.median(direct),
        "parallel_ratio": statistics.median(four) / statistics.median(one),
        "direct_count4_median_s": statistics.median(direct4),
        "direct_parallel_ratio": statistics.median(direct4) / statistics.median(direct),
        "cancel_p50_ms": percentile(cancels, 0.50) * 1000,
        "cancel_p99_ms": percentile(cancels, 0.99) * 1000,
        "cancel_max_ms": max(cancels) * 1000,
        "runs": args.runs,
        "cancel_runs": args.cancel_runs,
        "fake_delay_s": DELAY_S,
        "finish_early": not args.no_finish_early,
    }
    print(json.dumps(result, indent=2))
    print(
        f"service overhead gRPC  {result['overhead_ratio']:.3f}  (goal <= 1.01; "
        f"bare grpc.aio running the same fake: {result['bare_grpc_ratio']:.3f})"
    )
    print(
        f"service overhead HTTP  {result['http_overhead_ratio']:.3f}  (goal <= 1.01; "
        f"bare aiohttp running the same fake: {result['bare_http_ratio']:.3f})"
    )
    print(
        f"count4 / count1        {result['parallel_ratio']:.3f}  (goal <= 1.10; "
        f"the fake alone, 4 side by side / 1: {result['direct_parallel_ratio']:.3f})"
    )
    print(
        f"cancel p50 / p99       {result['cancel_p50_ms']:.1f} ms / "
        f"{result['cancel_p99_ms']:.1f} ms  (goal p99 <= 50 ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
