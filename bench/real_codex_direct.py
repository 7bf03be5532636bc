"""Wall time and peak RSS of the real codex run directly against the stand-in.

The baseline for "through the service vs. direct": N codex
processes started at once, one image each, no gRPC service in between.

    .venv/bin/python bench/real_codex_direct.py --count 1 --count 4 [--repeat 3]

Peak RSS is reported two ways: `maxrss` is wait4()'s figure (the largest
single process of the tree: node wrapper or native binary), `group_peak`
is the peak of the summed VmRSS of the whole process group, sampled every
20 ms (what the machine really has to hold for one run).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: tests.* lives at the root

from tests.upstream_standin import UpstreamStandin, write_codex_home

DEFAULT_CODEX = ROOT / ".tools/codex/node_modules/.bin/codex"


def group_rss_kib(pgid: int) -> int:
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            if int(stat[stat.rfind(")") + 2 :].split()[2]) != pgid:
                continue
            for line in Path(f"/proc/{entry}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue  # the process ended while we looked
    return total


def one_run(codex: str, env: dict, workdir: str, results: list, index: int) -> None:
    start = time.monotonic()
    proc = subprocess.Popen(
        [codex, "exec", "--json", "--skip-git-repo-check", "--", f"bench image {index}"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=workdir,
        start_new_session=True,
    )
    peak = 0
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, group_rss_kib(proc.pid))
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        done.set()
        sampler.join()
        try:  # never leave a native child behind
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    results.append(
        {
            "index": index,
            "rc": proc.returncode,
            "wall_s": round(time.monotonic() - start, 3),
            "maxrss_mib": round(usage.ru_maxrss / 1024, 1),
            "group_peak_mib": round(peak / 1024, 1),
        }
    )


def batch(codex: str, count: int, home: Path | None = None, **switches) -> dict:
    """One batch of `count` parallel runs. Without `home`, a fresh CODEX_HOME
    (includes codex's first-run set-up of that home); with it, a warm one.
    `switches` are the stand-in's (e.g. turn_slow=1)."""
    with (
        UpstreamStandin(**switches) as standin,
        tempfile.TemporaryDirectory(prefix="bench-codex-") as tmp,
    ):
        home = Path(home or Path(tmp) / "home")
        env = dict(os.environ, **write_codex_home(home, standin.base_url))
        results: list = []
        start = time.monotonic()
        threads = [
            threading.Thread(target=one_run, args=(codex, env, tmp, results, i))
            for i in range(count)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        images = len(list((home / "generated_images").glob("*/*.png")))
        return {
            "count": count,
            "warm_home": home.parent != Path(tmp),
            "batch_wall_s": round(time.monotonic() - start, 3),
            "images_written": images,
            "runs": sorted(results, key=lambda r: r["index"]),
        }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--count", type=int, action="append", help="parallel runs per batch (repeatable)"
    )
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--codex", default=str(DEFAULT_CODEX))
    parser.add_argument("--warm-home", help="reuse this CODEX_HOME (warm it with one run first)")
    args = parser.parse_args(argv)
    if not Path(args.codex).exists():
        print(f"codex not found at {args.codex}: run `make codex`", file=sys.stderr)
        return 2
    for count in args.count or [1, 4]:
        for _ in range(args.repeat):
            print(
                json.dumps(batch(args.codex, count, args.warm_home and Path(args.warm_home))),
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
