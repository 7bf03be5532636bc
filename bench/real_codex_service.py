"""The real codex through the gRPC service vs. run directly.

    .venv/bin/python bench/real_codex_service.py [--repeat 3]

For count 1 and 4: the wall time of one Generate (client side) and the peak
RSS of its codex processes (summed over all candidates, sampled every 20 ms),
next to the same number of direct runs of the same binary against the same
stand-in (`real_codex_direct.py`). Prints one JSON line per batch and a
summary with the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]  # tests.* and the direct bench beside this file

from codeximage.v1 import image_service_pb2 as pb
from real_codex_direct import batch as direct_batch

from tests.e2e import realcodex
from tests.support.server_proc import start_server
from tests.upstream_standin import MOCK_API_KEY, UpstreamStandin, write_codex_home


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def through_service(srv, count: int) -> dict:
    peak, done = 0, threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, sum(_rss_kib(p) for p in realcodex.codex_processes(srv.pid)))
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.monotonic()
    images = 0
    try:
        for event in srv.stub().Generate(
            pb.GenerateRequest(prompt="bench", count=count), timeout=300
        ):
            images += event.WhichOneof("event") == "image"
    finally:
        done.set()
        sampler.join()
    return {
        "count": count,
        "wall_s": round(time.monotonic() - start, 3),
        "images": images,
        "codex_peak_mib": round(peak / 1024, 1),
        "server_rss_mib": round(_rss_kib(srv.pid) / 1024, 1),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    if not realcodex.PROJECT_CODEX.exists():
        print("codex not installed: run `make codex`", file=sys.stderr)
        return 2
    native = realcodex.native_codex(realcodex.PROJECT_CODEX)
    summary = {}
    with UpstreamStandin() as standin, tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
        home = Path(os.path.realpath(tmp)) / "home"
        write_codex_home(home, standin.base_url)
        try:
            with start_server(
                Path(tmp),
                codex=native,
                codex_home=home,
                logged_in=False,
                env={"MOCK_API_KEY": MOCK_API_KEY},
            ) as srv:
                through_service(srv, 1)  # warm-up: readiness probe, first imports
                warm = Path(os.path.realpath(tmp)) / "direct-home"
                direct_batch(str(native), 1, warm)  # first run sets the home up
                for count in (1, 4):
                    svc = [through_service(srv, count) for _ in range(args.repeat)]
                    # Direct runs get their own warm CODEX_HOME, as the server's is warm.
                    dirs = [direct_batch(str(native), count, warm) for _ in range(args.repeat)]
                    for row in svc:
                        print(json.dumps({"via": "service", **row}), flush=True)
                    for row in dirs:
                        print(json.dumps({"via": "direct", **row}), flush=True)
                    svc_wall = statistics.median(r["wall_s"] for r in svc)
                    dir_wall = statistics.median(r["batch_wall_s"] for r in dirs)
                    svc_rss = statistics.median(r["codex_peak_mib"] for r in svc)
                    # Direct: the candidates run at once, so their peaks add up.
                    dir_rss = statistics.median(
                        sum(x["group_peak_mib"] for x in r["runs"]) for r in dirs
                    )
                    summary[count] = {
                        "service_wall_s": svc_wall,
                        "direct_wall_s": dir_wall,
                        "wall_ratio": round(svc_wall / dir_wall, 2),
                        "service_codex_peak_mib": svc_rss,
                        "direct_codex_peak_mib": dir_rss,
                        "rss_ratio": round(svc_rss / dir_rss, 2) if dir_rss else None,
                        "server_rss_mib": svc[-1]["server_rss_mib"],
                    }
        finally:
            realcodex.kill_groups(realcodex.processes_with_codex_home(home))
    print(json.dumps({"summary": summary}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
