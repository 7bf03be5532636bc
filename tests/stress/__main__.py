"""`make stress`: the full stress run. Prints one line per figure and exits
non-zero on any leftover (5xx, traceback, non-JSON log line, process,
zombie, working directory, run record, or fds that grew)."""

from __future__ import annotations

import sys
import time

from .run import FULL, run


def main() -> int:
    started = time.monotonic()
    figures = run(FULL)
    print(f"stress: took {time.monotonic() - started:.0f} s")
    bad = figures.failures()
    print("stress: FAILED " + ", ".join(bad) if bad else "stress: no leftovers")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
