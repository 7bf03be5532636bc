"""`make chaos`: a supervised 3-replica cluster under a workload and a
seeded nemesis, then every invariant checked. Prints a table; exits 1 on
any violation, naming the seed that replays the run."""

from __future__ import annotations

import argparse
import random
import sys

from .run import Plan, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--seed", type=int, default=None, help="replays a run (default: a new one)")
    parser.add_argument("--generations", type=int, default=400)
    parser.add_argument("--faults", type=int, default=25)
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--max-seconds", type=float, default=900)
    parser.add_argument(
        "--skip-sha256-check",
        action="store_true",
        help="the deliberately broken invariant: replicas skip their sha256 checks (a test-only "
        "switch), so damaged copies are served; the run must then fail",
    )
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    print(f"chaos: seed {seed}", flush=True)
    table, violations = run(
        Plan(
            seed=seed,
            generations=args.generations,
            faults=args.faults,
            workers=args.workers,
            max_s=args.max_seconds,
            skip_sha256_check=args.skip_sha256_check,
        ),
        report=lambda line: print(f"chaos: {line}", flush=True),
    )
    for line in table:
        print(f"chaos: {line}")
    for v in violations[:40]:
        print(f"chaos: VIOLATION {v}")
    if violations:
        extra = " CHAOS_ARGS=--skip-sha256-check" if args.skip_sha256_check else ""
        print(f"chaos: FAILED; replay with `make chaos CHAOS_SEED={seed}{extra}`")
        return 1
    print(f"chaos: passed (seed {seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
