"""`python -m codex_image_server`: the gRPC server and the HTTP shim on one
event loop in one process."""
from __future__ import annotations

import os

# gRPC's C core writes its own plain-text lines to stderr; only our JSON goes there.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

import asyncio  # noqa: E402 - after the gRPC setting, which must precede grpc's import
import json  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

from . import banner, heap, keys as keys_mod, logs, private_files, settings as settings_mod, workdirs  # noqa: E402
from .blocking import Blocking
from .engine import Engine
from .grpc_api.server import GrpcServer
from .keys import Keyring
from .logs import log
from .metrics import Metrics
from .retention import Retention, Sweeper
from .service import Service
from .slots import Slots
from .store.backends import open_store
from .store.output_store import INDEX_FILE


def _write_ready_file(path: str, info: dict) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(info, f)
    os.replace(tmp, path)


async def _start_http_shim(settings, server: GrpcServer, service: Service):
    """The /v1 shim, calling the servicer in-process on this loop."""
    try:
        from codex_image_shim import embed  # noqa: PLC0415 - optional part
    except ImportError:
        log("http.unavailable", level="warning", detail="codex_image_shim is not installed")
        return None
    try:
        return await embed.start(server.servicer, settings, service.store.file_path,
                                 internal_key=service.keyring.internal_key,
                                 metrics_registry=service.metrics.registry)
    except OSError as exc:
        raise SystemExit(f"could not start the HTTP shim on {settings.http_host}:{settings.http_port}: "
                         f"{exc.strerror or exc}. Set CODEX_IMAGE_SERVER_PORT to a free port, "
                         "or --no-http-enabled.") from None


async def serve(settings) -> int:
    engine = Engine(settings)
    killed = engine.sweep_leftovers()
    if killed:
        log("startup.killed_leftover_codex", level="warning", pids=killed)
    removed = workdirs.sweep(settings.work_dir)
    if removed:
        log("startup.removed_leftover_workdirs", level="warning", count=len(removed))
    store = open_store(settings)
    ledger = store.metadata.account_ledger()
    if ledger is not None and engine.accounts.share(ledger):
        log("accounts.shared", detail="runs and exhaustion of named accounts are shared through the database")
    keyring = Keyring(settings.api_keys, settings.keys_path)
    blocking = Blocking(settings.blocking_threads)
    service = Service(settings, engine, store, Slots(settings.max_concurrent, settings.queue_limit), keyring,
                      Metrics(), blocking)
    server = GrpcServer(settings, service, blocking)
    sweeper = Sweeper(Retention(store, service.metrics, settings.retention_max_age_s, settings.retention_max_bytes,
                                settings.retention_unrecorded_age_s), settings.retention_interval_ms / 1000)
    await server.start()
    sweeper.start()
    try:
        shim = await _start_http_shim(settings, server, service) if settings.http_enabled else None
    except SystemExit:
        await server.stop(grace_s=0)
        raise
    ready = engine.readiness.get()
    log("server.started", grpc=f"{settings.grpc_host}:{server.port}",
        http=f"{settings.http_host}:{shim.port}" if shim else None, codex=ready.path or None,
        codex_version=ready.version or None, ready=ready.ready, problem=ready.problem or None,
        auth_required=keyring.required, max_concurrent=settings.max_concurrent,
        output_dir=str(settings.output_dir), subreaper=engine.subreaper, finish_early=settings.finish_early)
    if banner.wanted(settings.banner):
        sys.stderr.write(banner.render(settings.grpc_host, server.port, settings.http_host if shim else None,
                                       shim.port if shim else None, ready, keyring.required))
        sys.stderr.flush()
    if settings.ready_file:
        _write_ready_file(settings.ready_file, {"grpc_port": server.port, "http_port": shim.port if shim else 0,
                                                "pid": os.getpid()})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, _reload_keys, keyring)
    await stop.wait()
    log("server.stopping")
    if shim:
        await shim.stop()
    await server.stop(grace_s=settings.kill_grace_ms / 1000 + 2)
    sweeper.stop()
    blocking.close()
    store.close()
    return 0


def _reload_keys(keyring: Keyring) -> None:
    try:
        named = keyring.reload()
    except keys_mod.KeyFileError as exc:
        log("keys.reload_failed", level="error", detail=str(exc))
        return
    log("keys.reloaded", named_keys=named)


def _keys_command(argv: list[str]) -> int:
    """`keys add NAME [--role member|admin] [--max-concurrent N] [--images-per-day N]`: prints the new key once."""
    import argparse  # noqa: PLC0415
    parser = argparse.ArgumentParser(prog="codex-image-server keys")
    sub = parser.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="make a named key and record its hash in the keys file")
    add.add_argument("name")
    add.add_argument("--role", choices=keys_mod.ROLES, default=keys_mod.MEMBER,
                     help="member: sees only its own images and requests (default); admin: sees all")
    add.add_argument("--max-concurrent", type=int, default=0, help="requests at once (0: no limit)")
    add.add_argument("--images-per-day", type=int, default=0, help="images per UTC day (0: no limit)")
    add.add_argument("--keys-file", type=str, default=None, help="default: CODEX_IMAGE_SERVER_KEYS_FILE "
                                                                  "or <state_dir>/keys.json")
    args, rest = parser.parse_known_args(argv)
    settings = settings_mod.load(rest + (["--keys-file", args.keys_file] if args.keys_file else []))
    try:
        key = keys_mod.add_to_file(settings.keys_path, args.name, args.max_concurrent, args.images_per_day,
                                   args.role)
    except keys_mod.KeyFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(key)
    print(f"key {args.name!r} ({args.role}) added to {settings.keys_path}; it is shown only now. "
          "Send SIGHUP to a running server to load it.", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["service"]:  # install|uninstall|status|run as a login service
        from .autostart.commands import main as service_main  # noqa: PLC0415 - only for that command
        return service_main(argv[1:])
    if argv[:1] == ["keys"]:
        return _keys_command(argv[1:])
    if argv[:1] == ["doctor"]:  # checks what the server needs, prints fixes
        from .doctor import main as doctor_main  # noqa: PLC0415 - only for that command
        return doctor_main(argv[1:])
    settings = settings_mod.load(argv)
    logs.configure(settings.log_level)
    private_files.keep_private(settings.state_dir, settings.output_dir, INDEX_FILE)
    heap.tune()
    return asyncio.run(serve(settings))


if __name__ == "__main__":
    sys.exit(main())
