"""The composition root: builds the engine, store, Service and both servers,
runs them on one event loop, and stops them on SIGTERM/SIGINT (SIGHUP reloads
the keys). The command line (cli.py) calls `run`; so does `service run`."""

from __future__ import annotations

import os

# gRPC's C core writes its own plain-text lines to stderr; only our JSON goes there.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

# The imports below come after that setting, which must precede grpc's import.
import asyncio
import dataclasses
import json
import signal
import sys

from codex_image_server import banner, settings as settings_mod
from codex_image_server.dataplane.handlers import Handlers
from codex_image_server.dataplane.operation_messages import GenerateRequestCodec, operation_json
from codex_image_server.dataplane.service import Service
from codex_image_server.engine.engine import Engine
from codex_image_server.grpc_api.server import GrpcServer
from codex_image_server.operations.runner import Operations
from codex_image_server.operations.webhooks import Webhooks
from codex_image_server.runtime import heap, logs, private_files, workdirs
from codex_image_server.runtime.blocking import Blocking
from codex_image_server.runtime.logs import log
from codex_image_server.runtime.slots import Slots
from codex_image_server.store import OutputStore
from codex_image_server.store.backends import open_store
from codex_image_server.store.output_store import INDEX_FILE
from codex_image_server.team import keys as keys_mod
from codex_image_server.team.keys import Keyring
from codex_image_server.team.metrics import Metrics
from codex_image_server.team.retention import Retention, Sweeper


def _write_ready_file(path: str, info: dict) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(info, f)
    os.replace(tmp, path)


def _operations(settings, service: Service) -> Operations:
    metadata = service.store.metadata
    webhooks = Webhooks(
        settings.webhook_secret,
        settings.webhook_allow,
        settings.webhook_retry_ms / 1000,
        metadata,
        operation_json,
    )
    # One process owns an SQLite store; replicas share PostgreSQL (and its ledger).
    return Operations(
        service,
        GenerateRequestCodec(),
        getattr(metadata, "replica", "local"),
        one_process=metadata.account_ledger() is None,
        webhooks=webhooks,
    )


async def _start_http_shim(settings, handlers: Handlers):
    """The /v1 shim on this loop, calling the same handlers as the gRPC servicer."""
    try:
        from codex_image_shim import embed  # noqa: PLC0415 - optional part
    except ImportError:
        log("http.unavailable", level="warning", detail="codex_image_shim is not installed")
        return None
    try:
        return await embed.start(
            handlers, settings, metrics_registry=handlers.service.metrics.registry
        )
    except OSError as exc:
        raise SystemExit(
            f"could not start the HTTP shim on {settings.http_host}:{settings.http_port}: "
            f"{exc.strerror or exc}. Set CODEX_IMAGE_SERVER_PORT to a free port, "
            "or --no-http-enabled."
        ) from None


@dataclasses.dataclass
class Parts:
    """What `build` makes: every surface reaches the service through `handlers`."""

    engine: Engine
    store: OutputStore
    keyring: Keyring
    blocking: Blocking
    service: Service
    handlers: Handlers

    def close(self) -> None:
        self.blocking.close()
        self.store.close()


def build(settings, *, reap_orphans: bool = True) -> Parts:
    """The engine, store, keys and Service with their handlers, wired as the
    server runs them (tests build the same parts in-process, with
    `reap_orphans=False`: the test process's children stay its own)."""
    engine = Engine(settings, reap_orphans=reap_orphans)
    store = open_store(settings)
    ledger = store.metadata.account_ledger()
    if ledger is not None and engine.accounts.share(ledger):
        log(
            "accounts.shared",
            detail="runs and exhaustion of named accounts are shared through the database",
        )
    keyring = Keyring(settings.api_keys, settings.keys_path)
    blocking = Blocking(settings.blocking_threads)
    service = Service(
        settings,
        engine,
        store,
        Slots(settings.max_concurrent, settings.queue_limit),
        keyring,
        Metrics(),
        blocking,
    )
    handlers = Handlers(settings, service, _operations(settings, service))
    return Parts(engine, store, keyring, blocking, service, handlers)


async def serve(settings) -> int:
    parts = build(settings)
    engine, store, keyring, blocking = parts.engine, parts.store, parts.keyring, parts.blocking
    service, handlers = parts.service, parts.handlers
    killed = engine.sweep_leftovers()
    if killed:
        log("startup.killed_leftover_codex", level="warning", pids=killed)
    removed = workdirs.sweep(settings.work_dir)
    if removed:
        log("startup.removed_leftover_workdirs", level="warning", count=len(removed))
    server = GrpcServer(settings, handlers, blocking)
    sweeper = Sweeper(
        Retention(
            store,
            service.metrics,
            settings.retention_max_age_s,
            settings.retention_max_bytes,
            settings.retention_unrecorded_age_s,
        ),
        settings.retention_interval_ms / 1000,
    )
    await server.start()
    sweeper.start()
    try:
        shim = await _start_http_shim(settings, handlers) if settings.http_enabled else None
    except SystemExit:
        await server.stop(grace_s=0)
        raise
    ready = engine.readiness.get()
    log(
        "server.started",
        grpc=f"{settings.grpc_host}:{server.port}",
        http=f"{settings.http_host}:{shim.port}" if shim else None,
        codex=ready.path or None,
        codex_version=ready.version or None,
        ready=ready.ready,
        problem=ready.problem or None,
        auth_required=keyring.required,
        max_concurrent=settings.max_concurrent,
        output_dir=str(settings.output_dir),
        subreaper=engine.subreaper,
        finish_early=settings.finish_early,
    )
    if banner.wanted(settings.banner):
        sys.stderr.write(
            banner.render(
                settings.grpc_host,
                server.port,
                settings.http_host if shim else None,
                shim.port if shim else None,
                ready,
                keyring.required,
            )
        )
        sys.stderr.flush()
    if settings.ready_file:
        _write_ready_file(
            settings.ready_file,
            {"grpc_port": server.port, "http_port": shim.port if shim else 0, "pid": os.getpid()},
        )
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


def run(argv: list[str]) -> int:
    """The server with the settings these flags (and the environment) give."""
    settings = settings_mod.load(argv)
    logs.configure(settings.log_level)
    private_files.keep_private(settings.state_dir, settings.output_dir, INDEX_FILE)
    heap.tune()
    return asyncio.run(serve(settings))
