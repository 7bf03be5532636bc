"""`python -m codex_image_server`: the gRPC server and the HTTP shim on one
event loop in one process."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

from . import logs, settings as settings_mod
from .blocking import Blocking
from .engine import Engine
from .grpc_api.server import GrpcServer
from .logs import log
from .output_store import OutputStore


def _write_ready_file(path: str, info: dict) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(info, f)
    os.replace(tmp, path)


async def _start_http_shim(settings, server: GrpcServer, store: OutputStore):
    """The /v1 shim, calling the servicer in-process on this loop."""
    try:
        from codex_image_shim import embed  # noqa: PLC0415 - optional part
    except ImportError:
        log("http.unavailable", level="warning", detail="codex_image_shim is not installed")
        return None
    try:
        return await embed.start(server.servicer, settings, store.file_path)
    except OSError as exc:
        raise SystemExit(f"could not start the HTTP shim on {settings.http_host}:{settings.http_port}: "
                         f"{exc.strerror or exc}. Set CODEX_IMAGE_SERVER_PORT to a free port, "
                         "or --no-http-enabled.") from None


async def serve(settings) -> int:
    engine = Engine(settings)
    killed = engine.sweep_leftovers()
    if killed:
        log("startup.killed_leftover_codex", level="warning", pids=killed)
    store = OutputStore(settings.output_dir)
    blocking = Blocking(settings.blocking_threads)
    server = GrpcServer(settings, engine, store, blocking)
    await server.start()
    try:
        shim = await _start_http_shim(settings, server, store) if settings.http_enabled else None
    except SystemExit:
        await server.stop(grace_s=0)
        raise
    ready = engine.readiness.get()
    log("server.started", grpc=f"{settings.grpc_host}:{server.port}",
        http=f"{settings.http_host}:{shim.port}" if shim else None, codex=ready.path or None,
        codex_version=ready.version or None, ready=ready.ready, problem=ready.problem or None,
        auth_required=settings.auth_required, max_concurrent=settings.max_concurrent,
        output_dir=str(settings.output_dir), subreaper=engine.subreaper, finish_early=settings.finish_early)
    if settings.ready_file:
        _write_ready_file(settings.ready_file, {"grpc_port": server.port, "http_port": shim.port if shim else 0,
                                                "pid": os.getpid()})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log("server.stopping")
    if shim:
        await shim.stop()
    await server.stop(grace_s=settings.kill_grace_ms / 1000 + 2)
    blocking.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    settings = settings_mod.load(argv)
    logs.configure(settings.log_level)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    return asyncio.run(serve(settings))


if __name__ == "__main__":
    sys.exit(main())
