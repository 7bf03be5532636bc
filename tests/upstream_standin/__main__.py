"""Run the stand-in by hand: `python -m tests.upstream_standin --port 0`.

Prints its port and base URL, and (with --codex-home) writes a CODEX_HOME
pointing codex at it, then serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import signal
import threading

from . import UpstreamStandin, write_codex_home
from .switches import parse_directive


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.upstream_standin")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--codex-home", help="write a CODEX_HOME with the mock provider here")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="default switch, e.g. --set slow=5 --set images_status=403",
    )
    parser.add_argument("--quiet", action="store_true", help="no per-request log lines")
    args = parser.parse_args(argv)

    defaults = parse_directive("[[upstream: " + " ".join(args.set) + "]]") if args.set else {}
    standin = UpstreamStandin(args.host, args.port, verbose=not args.quiet, **defaults).start()
    print(f"port={standin.port}", flush=True)
    print(f"base_url={standin.base_url}", flush=True)
    if args.codex_home:
        env = write_codex_home(args.codex_home, standin.base_url)
        print(" ".join(f"{k}={v}" for k, v in env.items()), flush=True)

    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    standin.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
