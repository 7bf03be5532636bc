"""What delivering the plugin's exact size costs, next to a generation.

    .venv/bin/python bench/resize_bench.py [--repeat 5]

1. The resize alone (imaging.deliver: decode, centre crop, Lanczos, PNG
   encode) from a 1536x1024 photo-like model image to the plugin's 16:9 size
   at 1k, 2k and 4k: median ms over `--repeat` runs, and the peak RSS it adds,
   each target measured in a fresh process so peaks do not hide each other.
   CPU ms (the work is single-threaded) is printed beside wall ms: on a shared,
   loaded machine it is the steadier figure.
   "passthrough" (no resize, same format) is the baseline measured in the same run.
2. A generation's own time: one Generate through the service with the real
   codex against the local stand-in, `size: auto` (nothing to resize) vs
   `size: 4k, aspect: 16:9` (resized), median wall time. Skipped, saying so,
   when codex is not installed (`make codex`).
Prints one JSON line per measurement and a summary line.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from codex_image_server.request import imaging, sizes
from codeximage.v1 import image_service_pb2 as pb
from PIL import Image

from tests.e2e import realcodex
from tests.support.server_proc import start_server
from tests.upstream_standin import MOCK_API_KEY, UpstreamStandin, write_codex_home

TARGETS = ("passthrough", "1K", "2K", "4K")
NATIVE = (1536, 1024)  # a size the model answers "auto" with


def native_png() -> bytes:
    # Smooth noise scaled up: photo-like content, so PNG encoding costs what it would.
    rnd = random.Random(8)
    small = Image.frombytes("RGB", (48, 32), bytes(rnd.getrandbits(8) for _ in range(48 * 32 * 3)))
    out = io.BytesIO()
    small.resize(NATIVE, Image.BICUBIC).save(out, format="PNG")
    return out.getvalue()


def _target(name: str) -> tuple[int, int] | None:
    if name == "passthrough":
        return None
    resolved, _ = sizes.resolve(name, "16:9")
    return resolved.width, resolved.height


def one(name: str, repeat: int) -> dict:
    """Run in a fresh process: median ms and the peak RSS the resize adds."""
    data = native_png()
    info = imaging.inspect(data, sizes.OUTPUT_PIXEL_LIMIT)
    target = _target(name)
    before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = imaging.deliver(data, info, "png", target)
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "target": name,
        "size": "%dx%d" % (target or NATIVE),
        "from": "%dx%d" % NATIVE,
        "median_ms": round(statistics.median(times), 1),
        "median_cpu_ms": round(statistics.median(cpu), 1),
        "runs": repeat,
        "peak_rss_added_mib": round((peak_kib - before_kib) / 1024, 1),
        "bytes_out": len(out.data),
    }


def resize_costs(repeat: int) -> dict:
    rows = {}
    for name in TARGETS:
        proc = subprocess.run(
            [sys.executable, __file__, "--one", name, "--repeat", str(repeat)],
            capture_output=True,
            text=True,
            check=True,
        )
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        print(json.dumps({"resize": row}), flush=True)
        rows[name] = row
    return rows


def generation_times(repeat: int) -> dict | None:
    if not realcodex.PROJECT_CODEX.exists():
        print(json.dumps({"generation": "skipped: codex not installed (make codex)"}), flush=True)
        return None
    native = realcodex.native_codex(realcodex.PROJECT_CODEX)
    results = {}
    with UpstreamStandin() as standin, tempfile.TemporaryDirectory(prefix="bench-resize-") as tmp:
        standin.set(default_size="%dx%d" % NATIVE)
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
                stub = srv.stub()

                def run(**fields) -> float:
                    start = time.monotonic()
                    for _ in stub.Generate(
                        pb.GenerateRequest(prompt="bench", **fields), timeout=300
                    ):
                        pass
                    return time.monotonic() - start

                run()  # warm-up
                for label, fields in (("auto", {}), ("4K 16:9", {"size": "4k", "aspect": "16:9"})):
                    walls = [run(**fields) for _ in range(repeat)]
                    results[label] = round(statistics.median(walls) * 1000, 1)
                    print(
                        json.dumps(
                            {"generation": label, "median_ms": results[label], "runs": repeat}
                        ),
                        flush=True,
                    )
        finally:
            realcodex.kill_groups(realcodex.processes_with_codex_home(home))
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--one", choices=TARGETS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one, args.repeat)))
        return 0
    costs = resize_costs(args.repeat)
    gen = generation_times(max(3, args.repeat // 2))
    summary = {
        name: {
            "ms": row["median_ms"],
            "cpu_ms": row["median_cpu_ms"],
            "peak_rss_added_mib": row["peak_rss_added_mib"],
        }
        for name, row in costs.items()
    }
    if gen:
        summary["generation_ms"] = gen
        summary["resize_4k_share_of_generation"] = round(costs["4K"]["median_ms"] / gen["auto"], 2)
        summary["note"] = (
            "generation against the local stand-in (~1 s); a real image model takes "
            "tens of seconds, so the real share is far smaller"
        )
    print(json.dumps({"summary": summary}, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
