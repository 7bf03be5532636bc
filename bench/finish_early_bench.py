"""Finish early, real codex against the stand-in where every model turn
takes 1 s: a Generate through the service (which stops codex once
its image is final) divided by the same number of direct codex runs (which
wait for the closing turn). Goal <= 0.6 for count 1 and 4.

    .venv/bin/python bench/finish_early_bench.py [--repeat 3] [--turn 1]

Medians over --repeat, service and direct interleaved, warm CODEX_HOMEs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from codeximage.v1 import image_service_pb2 as pb
from real_codex_direct import batch as direct_batch

from tests.e2e import realcodex
from tests.support.server_proc import start_server
from tests.upstream_standin import MOCK_API_KEY, UpstreamStandin, write_codex_home


def through_service(srv, count: int) -> float:
    started = time.monotonic()
    images = sum(
        e.WhichOneof("event") == "image"
        for e in srv.stub().Generate(pb.GenerateRequest(prompt="bench", count=count), timeout=300)
    )
    assert images == count
    return time.monotonic() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--turn", type=float, default=1.0, help="seconds each model turn takes")
    args = parser.parse_args(argv)
    if not realcodex.PROJECT_CODEX.exists():
        print("codex not installed: run `make codex`", file=sys.stderr)
        return 2
    native = str(realcodex.native_codex(realcodex.PROJECT_CODEX))
    summary = {}
    with (
        UpstreamStandin(turn_slow=args.turn) as standin,
        tempfile.TemporaryDirectory(prefix="bench-early-") as tmp,
    ):
        home = Path(os.path.realpath(tmp)) / "home"
        write_codex_home(home, standin.base_url)
        warm = Path(os.path.realpath(tmp)) / "direct-home"
        try:
            with start_server(
                Path(tmp),
                codex=native,
                codex_home=home,
                logged_in=False,
                env={"MOCK_API_KEY": MOCK_API_KEY},
            ) as srv:
                through_service(srv, 1)  # warm-up
                direct_batch(native, 1, warm, turn_slow=args.turn)
                for count in (1, 4):
                    svc, direct = [], []
                    for _ in range(args.repeat):
                        svc.append(through_service(srv, count))
                        row = direct_batch(native, count, warm, turn_slow=args.turn)
                        assert row["images_written"] >= count
                        direct.append(row["batch_wall_s"])
                    ratio = statistics.median(svc) / statistics.median(direct)
                    summary[count] = {
                        "service_s": statistics.median(svc),
                        "direct_s": statistics.median(direct),
                        "ratio": round(ratio, 3),
                        "goal": "<= 0.6",
                        "met": ratio <= 0.6,
                        "service_runs": svc,
                        "direct_runs": direct,
                    }
                    print(
                        f"{'MET ' if ratio <= 0.6 else 'MISS'} finish early count {count}: service "
                        f"{statistics.median(svc):.2f} s / direct "
                        f"{statistics.median(direct):.2f} s = {ratio:.3f}"
                        f"  (goal <= 0.6; turn {args.turn} s)",
                        flush=True,
                    )
        finally:
            realcodex.kill_groups(realcodex.processes_with_codex_home(home))
    print(json.dumps({"summary": summary}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
