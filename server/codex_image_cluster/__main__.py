"""`make cluster`: PostgreSQL, s3proxy, N replicas and HAProxy on loopback,
until Ctrl-C. Prints where to point a client."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

from . import procs
from .cluster import Cluster, shared_stores_supported


def _fake_codex(directory: Path) -> str:
    """The test suite's codex stand-in, for trying the cluster without an account."""
    fake = procs.REPO / "tests" / "support" / "fake_codex.py"
    launcher = directory / "codex"
    launcher.write_text(
        f"#!{os.path.realpath(sys.executable)} -S\n"
        f"import runpy\nrunpy.run_path({str(fake)!r}, run_name='__main__')\n"
    )
    launcher.chmod(0o755)
    return str(launcher)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codex_image_cluster", description=__doc__)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument(
        "--port", type=int, default=17340, help="the balancer's port (gRPC and HTTP)"
    )
    parser.add_argument(
        "--fake-codex",
        action="store_true",
        help="replicas run the test stand-in (1 s per image), not your codex login",
    )
    parser.add_argument("--keep", action="store_true", help="keep the data directory after Ctrl-C")
    args = parser.parse_args(argv)
    directory = Path(tempfile.mkdtemp(prefix="codex-cluster-"))
    env, codex_bin, codex_home = {}, "", None
    if args.fake_codex:
        codex_bin = _fake_codex(directory)
        env["FAKE_CODEX_DELAY"] = "1"
        env["CODEX_IMAGE_SERVER_CODEX_ENV_ALLOW"] = (
            "FAKE_CODEX_*"  # codex sees allowlisted variables only
        )
    else:
        # Every replica uses your codex login unless CODEX_HOME says otherwise.
        codex_home = Path(os.environ.get("CODEX_HOME") or Path.home() / ".codex")
    cluster = Cluster(
        directory,
        replicas=args.replicas,
        codex_bin=codex_bin,
        codex_home=codex_home,
        env=env,
        port=args.port,
    )
    if args.fake_codex:
        for replica in cluster.replicas:
            home = replica.codex_home
            assert home is not None  # a cluster gives every replica one
            home.mkdir(parents=True, exist_ok=True)
            (home / "auth.json").write_text('{"fake": true}')
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(
        f"starting PostgreSQL, s3proxy, {args.replicas} replicas and HAProxy under {directory} ...",
        flush=True,
    )
    try:
        cluster.start()
        cluster.supervise()  # a member that dies is started again; one JSON line each
        b = cluster.balancer
        postgres, objects = cluster.stores()
        print(
            f"""
  balancer   {b.target}  (gRPC, /v1, /healthz, every HTTP surface)
     grpcurl -plaintext {b.target} list
     curl {b.http_base}/healthz
     CODEX_IMAGE_ADDR={b.target} codex-image generate "a lighthouse"
  postgres   {postgres.shown_url}  (data {postgres.data}; password in each replica's URL)
  s3         {objects.endpoint}  bucket {objects.url}""",
            flush=True,
        )
        for r in cluster.replicas:
            print(
                f"  {r.name}         gRPC {r.grpc_target}  HTTP {r.http_base}  pid {r.pid}  log "
                f"{r.log_path}"
            )
        if not shared_stores_supported():
            print(
                "\n  note: this build's replicas keep their own index and files (no "
                "--database-url yet)"
            )
        print(
            "\nAny of these that dies is restarted (one JSON line each). Ctrl-C stops everything.",
            flush=True,
        )
        stop.wait()
    finally:
        print("stopping ...", flush=True)
        cluster.stop() if args.keep else cluster.remove()
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
