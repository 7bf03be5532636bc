"""Detached generations: what a long-running operation costs over Generate.

    .venv/bin/python bench/operations_bench.py [--rounds 7] [--pairs 20] [--submits 200]

With the fake codex (tests/support/fake_codex.py), one server, SQLite store:
1. Submit latency: SubmitGeneration answered (the operation queued in the
   store), p50 and p99 over --submits sequential calls (each one's
   generation then runs in the background, as in real use).
2. Added cost per operation: end to end, Submit + WaitOperation until done,
   minus Generate of the same request (count=1, a fake taking DELAY_S).
   Both paths run interleaved in the same server, in --rounds rounds of
   --pairs pairs (which path goes first alternates, so neither always meets
   a warmer or busier machine); a round's figure is the median of its pairs'
   differences, and the result the median of the rounds' figures, printed
   with their spread (lowest and highest round). Target: <= 5 ms.
3. The same in the server's own CPU time (its threads, not the fake codex
   children; /proc/<pid>/task/*/schedstat), summed over each round's calls of either
   path: wall time on a loaded machine is mostly waiting for a core, which
   hits the path with more hand-offs harder; CPU time is what it costs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from codeximage.v1 import image_service_pb2 as pb
from google.longrunning import (
    operations_pb2_grpc,
    operations_proto_pb2 as lro,
)
from google.protobuf import duration_pb2

from tests.support.server_proc import start_server

# Short: the fake's own spawn and sleep jitter is noise both paths carry.
DELAY_S = 0.05
TARGET_MS = 5.0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def _request(request_id: str) -> pb.GenerateRequest:
    return pb.GenerateRequest(prompt=f"bench [[fake delay={DELAY_S}]]", request_id=request_id)


def generate_s(stub, request_id: str) -> float:
    started = time.perf_counter()
    for _ in stub.Generate(_request(request_id)):
        pass
    return time.perf_counter() - started


def operation_s(stub, ops, request_id: str) -> float:
    started = time.perf_counter()
    op = stub.SubmitGeneration(_request(request_id))
    while not op.done:
        op = ops.WaitOperation(
            lro.WaitOperationRequest(name=op.name, timeout=duration_pb2.Duration(seconds=30))
        )
    elapsed = time.perf_counter() - started
    assert op.WhichOneof("result") == "response", op
    return elapsed


def cpu_s(pid: int) -> float:
    """CPU time of the process's live threads so far, in ns resolution
    (schedstat; /proc/<pid>/stat counts 10 ms ticks). A thread that ended
    took its time along: the candidates' watcher threads, alike on both paths."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # ended meanwhile
    return total / 1e9


def one_round(stub, ops, pid: int, r: int, pairs: int) -> tuple[float, float, float, float]:
    """(median Generate, median Submit+Wait, median of the pairs' differences,
    server CPU per operation minus per Generate), in ms."""
    generate, operation, added, cpu = [], [], [], {"g": 0.0, "o": 0.0}

    def timed(path: str, call) -> float:
        before = cpu_s(pid)
        elapsed = call()
        cpu[path] += cpu_s(pid) - before
        return elapsed

    for i in range(pairs):

        def g_call(i=i):
            return generate_s(stub, f"gen-{r}-{i}")

        def o_call(i=i):
            return operation_s(stub, ops, f"op-{r}-{i}")

        if i % 2:
            o, g = timed("o", o_call), timed("g", g_call)
        else:
            g, o = timed("g", g_call), timed("o", o_call)
        generate.append(g * 1000)
        operation.append(o * 1000)
        added.append((o - g) * 1000)
    return (
        statistics.median(generate),
        statistics.median(operation),
        statistics.median(added),
        (cpu["o"] - cpu["g"]) / pairs * 1000,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--submits", type=int, default=200)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        start_server(Path(tmp), args=["--max-concurrent", "4"]) as srv,
    ):
        channel = srv.channel()
        stub, ops = srv.stub(channel), operations_pb2_grpc.OperationsStub(channel)
        for i in range(3):
            generate_s(stub, f"warm-generate-{i}")
            operation_s(stub, ops, f"warm-operation-{i}")
        rounds = [one_round(stub, ops, srv.pid, r, args.pairs) for r in range(args.rounds)]
        submits = []
        for i in range(args.submits):
            started = time.perf_counter()
            stub.SubmitGeneration(
                pb.GenerateRequest(prompt="queued [[fake delay=0.01]]", request_id=f"sub-{i}")
            )
            submits.append(time.perf_counter() - started)
        for i in range(args.submits):  # let the queue drain before the server stops
            ops.WaitOperation(
                lro.WaitOperationRequest(
                    name=f"operations/sub-{i}", timeout=duration_pb2.Duration(seconds=60)
                )
            )
        channel.close()
    g = statistics.median(r[0] for r in rounds)
    o = statistics.median(r[1] for r in rounds)
    added, cpu = [r[2] for r in rounds], [r[3] for r in rounds]
    print(
        f"submit latency: p50 {percentile(submits, 50) * 1000:.2f} ms, "
        f"p99 {percentile(submits, 99) * 1000:.2f} ms "
        f"({args.submits} submits)"
    )
    print(
        f"Generate (fake {DELAY_S * 1000:.0f} ms): median {g:.1f} ms; "
        f"Submit+Wait: median {o:.1f} ms"
    )
    print(
        f"added per operation: {statistics.median(added):.1f} ms (rounds {min(added):.1f} .. "
        f"{max(added):.1f} ms; "
        f"{args.rounds} rounds x {args.pairs} interleaved pairs; target <= {TARGET_MS:.0f} ms)"
    )
    print(
        f"added server CPU per operation: {statistics.median(cpu):.1f} ms "
        f"(rounds {min(cpu):.1f} .. "
        f"{max(cpu):.1f} ms); load average {os.getloadavg()[0]:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
