"""Each tested codex version against the pinned baseline, in one run: wall
time of one image (count 1) and of four at once (count 4), and peak RSS of
one run (native binary, against the stand-in, a fresh CODEX_HOME each batch).

    .venv/bin/python bench/codex_versions_bench.py [--repeat 5]

Versions take turns within each repeat (0.169.0, 0.170.0, 0.171.0, 0.169.0,
...) so a busy machine weighs on all alike; the figures are medians over the
repeats and each version's ratio to the first (the old pin). Needs `make
codex-matrix`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from codex_image_server.engine.versions import TESTED
from real_codex_direct import batch

from tests.e2e import realcodex


def native(version: str) -> str:
    return str(
        realcodex.native_codex(
            ROOT / ".tools" / f"codex-{version}" / "node_modules" / ".bin" / "codex"
        )
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--versions", nargs="*", default=list(TESTED))
    args = parser.parse_args(argv)
    seen: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeat):
        for version in args.versions:
            codex = native(version)
            one = batch(codex, 1)
            four = batch(codex, 4)
            assert one["images_written"] == 1 and four["images_written"] == 4, (version, one, four)
            seen.setdefault((version, "count1_s"), []).append(one["batch_wall_s"])
            seen.setdefault((version, "count4_s"), []).append(four["batch_wall_s"])
            seen.setdefault((version, "rss_mib"), []).append(one["runs"][0]["group_peak_mib"])
    base = args.versions[0]
    for version in args.versions:
        row = {"version": version}
        for what in ("count1_s", "count4_s", "rss_mib"):
            median = statistics.median(seen[(version, what)])
            row[what] = round(median, 3)
            row[what + "_vs_" + base] = round(median / statistics.median(seen[(base, what)]), 2)
        row["count4_over_count1"] = round(row["count4_s"] / row["count1_s"], 2)
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
