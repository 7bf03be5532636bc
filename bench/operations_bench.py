"""Detached generations: what a long-running operation costs over Generate.

    .venv/bin/python bench/operations_bench.py [--runs 15] [--submits 200]

With the fake codex (tests/support/fake_codex.py), one server, SQLite store:
1. Submit latency: SubmitGeneration answered (the operation queued in the
   store), p50 and p99 over --submits sequential calls (each one's
   generation then runs in the background, as in real use).
2. Added cost per operation: end to end, Submit + WaitOperation until done,
   minus Generate of the same request (count=1, a fake taking DELAY_S),
   medians over --runs alternating pairs in the same server (target <= 5 ms).
"""
from __future__ import annotations

import argparse
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

DELAY_S = 0.2
TARGET_MS = 5.0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def generate_s(stub, request_id: str) -> float:
    started = time.perf_counter()
    for _ in stub.Generate(pb.GenerateRequest(prompt=f"bench [[fake delay={DELAY_S}]]", request_id=request_id)):
        pass
    return time.perf_counter() - started


def operation_s(stub, ops, request_id: str) -> float:
    started = time.perf_counter()
    op = stub.SubmitGeneration(pb.GenerateRequest(prompt=f"bench [[fake delay={DELAY_S}]]", request_id=request_id))
    while not op.done:
        op = ops.WaitOperation(lro.WaitOperationRequest(name=op.name, timeout=duration_pb2.Duration(seconds=30)))
    elapsed = time.perf_counter() - started
    assert op.WhichOneof("result") == "response", op
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--submits", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, start_server(Path(tmp), args=["--max-concurrent", "4"]) as srv:
        channel = srv.channel()
        stub, ops = srv.stub(channel), operations_pb2_grpc.OperationsStub(channel)
        generate_s(stub, "warm-generate")
        operation_s(stub, ops, "warm-operation")
        generate, operation = [], []
        for i in range(args.runs):  # alternating: the machine's drift hits both alike
            generate.append(generate_s(stub, f"gen-{i}"))
            operation.append(operation_s(stub, ops, f"op-{i}"))
        submits = []
        for i in range(args.submits):
            started = time.perf_counter()
            stub.SubmitGeneration(pb.GenerateRequest(prompt="queued [[fake delay=0.01]]", request_id=f"sub-{i}"))
            submits.append(time.perf_counter() - started)
        for i in range(args.submits):  # let the queue drain before the server stops
            ops.WaitOperation(lro.WaitOperationRequest(name=f"operations/sub-{i}",
                                                       timeout=duration_pb2.Duration(seconds=60)))
        channel.close()
    g, o = statistics.median(generate) * 1000, statistics.median(operation) * 1000
    added = o - g
    print(f"submit latency: p50 {percentile(submits, 50) * 1000:.2f} ms, p99 "
          f"{percentile(submits, 99) * 1000:.2f} ms "
          f"({args.submits} submits)")
    print(f"Generate (fake {DELAY_S:.1f} s): median {g:.1f} ms; Submit+Wait: median {o:.1f} ms; "
          f"added per operation: {added:.1f} ms (target <= {TARGET_MS:.0f} ms) over {args.runs} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
