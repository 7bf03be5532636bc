"""`python -m codex_image_server`: start the gRPC server (and the HTTP shim)."""
from __future__ import annotations

import os

# gRPC's C core writes its own plain-text lines to stderr; only our JSON goes there.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

import json  # noqa: E402 - after the gRPC setting, which must precede grpc's import
import signal
import sys
import threading

from . import logs, settings as settings_mod, workdirs
from .engine import Engine
from .grpc_api.server import GrpcServer
from .logs import log
from .output_store import OutputStore


def _write_ready_file(path: str, info: dict) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(info, f)
    os.replace(tmp, path)


def _start_http_shim(settings, grpc_target: str):
    """The /v1 shim runs beside the gRPC server and talks to it over gRPC."""
    try:
        from codex_image_shim import embed  # noqa: PLC0415 - optional part
    except ImportError:
        log("http.unavailable", level="warning", detail="codex_image_shim is not installed")
        return None
    try:
        return embed.start(grpc_target, settings.http_host, settings.http_port, settings)
    except OSError as exc:
        raise SystemExit(f"could not start the HTTP shim on {settings.http_host}:{settings.http_port}: "
                         f"{exc.strerror or exc}. Set CODEX_IMAGE_SERVER_PORT to a free port, "
                         "or --no-http-enabled.") from None


def main(argv: list[str] | None = None) -> int:
    settings = settings_mod.load(argv)
    logs.configure(settings.log_level)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    engine = Engine(settings)
    killed = engine.sweep_leftovers()
    if killed:
        log("startup.killed_leftover_codex", level="warning", pids=killed)
    removed = workdirs.sweep(settings.work_dir)
    if removed:
        log("startup.removed_leftover_workdirs", level="warning", count=len(removed))
    store = OutputStore(settings.output_dir)
    server = GrpcServer(settings, engine, store)
    server.start()
    grpc_target = f"{'127.0.0.1' if settings.grpc_host in ('0.0.0.0', '::') else settings.grpc_host}:{server.port}"
    try:
        shim = _start_http_shim(settings, grpc_target) if settings.http_enabled else None
    except SystemExit:
        server.stop(grace_s=0)
        raise
    ready = engine.readiness.get()
    log("server.started", grpc=f"{settings.grpc_host}:{server.port}",
        http=f"{settings.http_host}:{shim.port}" if shim else None, codex=ready.path or None,
        codex_version=ready.version or None, ready=ready.ready, problem=ready.problem or None,
        auth_required=settings.auth_required, max_concurrent=settings.max_concurrent,
        output_dir=str(settings.output_dir), subreaper=engine.subreaper)
    if settings.ready_file:
        _write_ready_file(settings.ready_file, {"grpc_port": server.port, "http_port": shim.port if shim else 0,
                                                "pid": os.getpid()})
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    log("server.stopping")
    if shim:
        shim.stop()
    server.stop(grace_s=settings.kill_grace_ms / 1000 + 2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
