"""The server's two surfaces served from the test's own process: the real
gRPC server (grpc_api.server.GrpcServer) and the real HTTP shim
(codex_image_shim.embed: the front door, fixed answers and connection limits
a server process mounts on aiohttp's server, which aiohttp's TestServer
would leave out) over the Service `serve.build` makes, with the fake codex,
on ephemeral ports of 127.0.0.1. Calls still cross a real socket; what is
saved is a server process's start (its interpreter, its imports, its
readiness probe before the ready file).

    with serve_in_process(tmp_path, http=True, env={...}, args=[...]) as srv:
        stub = srv.stub()                  # as with server_proc.start_server
        httpx.get(srv.http_base + "/healthz")

A directory's shared fixture serves a module in-process when that module
sets `IN_PROCESS = True` (`serve_for(request)` picks).

`srv` answers what the tests ask of a ServerProcess (grpc_port, http_port,
grpc_target, http_base, channel, stub, fake_runs, runs_of, output_dir,
state_dir, codex_home, log_text, log_records), so a module moves by changing
its fixture. The surfaces run on an event loop in a thread of their own: the
test calls them with blocking clients (grpc, httpx, urllib, the `openai`
SDK) from its own thread.

Use it for what the process adds nothing to: validation, sizes, adapters,
routes, error mapping, the OpenAI field rules, Host/Origin checks, keys and
tenants. A server process (server_proc.start_server) is still required for
cancellation when a client goes away mid-call, process hygiene (what is left
running, process groups, reaping), signals (SIGTERM, SIGHUP), start-up and
the command line (what `serve.serve` does before serving: leftover sweeps,
the retention sweeper, the banner, the ready file), resource limits of the
server process, anything that counts the server's processes or file
descriptors, and e2e runs with the real codex. (In-process, the engine is
no subreaper, so that the test's own children stay its own: orphans of a
codex run go to init, as where prctl is missing.)

The server's log lines go to a file of its own (runtime/logs.write_to), read
with log_text and log_records as of a server process; while several
in-process servers run at once, each file has the lines of all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from codex_image_server import serve
from codex_image_server.grpc_api.server import GrpcServer
from codex_image_server.runtime import logs
from codex_image_shim import embed

from . import server_proc
from .inprocess import built_service

START_TIMEOUT_S = 30.0
STOP_GRACE_S = 2.0


@dataclasses.dataclass
class InProcessServer:
    parts: serve.Parts
    grpc_port: int
    http_port: int
    piddir: Path
    loop: asyncio.AbstractEventLoop
    log_path: Path

    @property
    def settings(self):
        return self.parts.service.settings

    @property
    def output_dir(self) -> Path:
        return Path(self.settings.output_dir)

    @property
    def state_dir(self) -> Path:
        return Path(self.settings.state_dir)

    @property
    def codex_home(self) -> Path:
        return self.piddir.parent / "codex-home"  # built_service's layout

    # What a test asks of a server, the same as of a server process.
    grpc_target = server_proc.ServerProcess.grpc_target
    http_base = server_proc.ServerProcess.http_base
    channel = server_proc.ServerProcess.channel
    stub = server_proc.ServerProcess.stub
    fake_runs = server_proc.ServerProcess.fake_runs
    runs_of = server_proc.ServerProcess.runs_of
    log_text = server_proc.ServerProcess.log_text
    log_records = server_proc.ServerProcess.log_records

    def call(self, coroutine, timeout: float = 60.0):
        """Run a coroutine on the server's loop (e.g. a Service call) and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)


class _EveryLiveLog:
    """The log stream while in-process servers run: each line goes to the
    file of every one of them (the logs are one per process, not per server)."""

    def __init__(self):
        self.files: list = []
        self.before = None

    def write(self, text: str) -> None:
        for f in list(self.files):
            f.write(text)

    def flush(self) -> None:
        for f in list(self.files):
            f.flush()


_live_logs = _EveryLiveLog()
_live_logs_lock = threading.Lock()


@contextlib.contextmanager
def _logging_to(log_file) -> Iterator[None]:
    with _live_logs_lock:
        if not _live_logs.files:
            _live_logs.before = logs.write_to(_live_logs)
        _live_logs.files.append(log_file)
    try:
        yield
    finally:
        with _live_logs_lock:
            _live_logs.files.remove(log_file)
            if not _live_logs.files:
                logs.write_to(_live_logs.before)


@contextlib.contextmanager
def serve_in_process(
    tmp_path: Path,
    *,
    env: dict | None = None,
    args: list[str] | None = None,
    http: bool = False,
    logged_in: bool = True,
) -> Iterator[InProcessServer]:
    """Both surfaces (gRPC always, the shim when `http`) on a loop of their
    own thread, until the block ends; then stopped as a server stops them
    (the shim, then gRPC with its operations and codex runs) and every fake
    codex run of theirs gone. `env`: CODEX_IMAGE_SERVER_* settings; `args`:
    command-line flags; `logged_in` as for server_proc.start_server."""
    started = threading.Event()
    box: dict = {}  # what the server's thread hands over: ports, loop, stop event, error

    async def main(parts: serve.Parts) -> None:
        settings = parts.service.settings
        grpc_server = GrpcServer(settings, parts.handlers, parts.blocking)
        shim = None
        try:
            await grpc_server.start()
            if http:
                shim = await embed.start(
                    parts.handlers, settings, metrics_registry=parts.service.metrics.registry
                )
            box["ports"] = (grpc_server.port, shim.port if shim else 0)
            box["loop"] = asyncio.get_running_loop()
            box["stop"] = asyncio.Event()
            started.set()
            await box["stop"].wait()
        finally:
            if shim is not None:
                await shim.stop()
            await grpc_server.stop(grace_s=STOP_GRACE_S)

    def thread_main(parts: serve.Parts) -> None:
        try:
            asyncio.run(main(parts))
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            box["error"] = exc
        finally:
            started.set()

    Path(tmp_path).mkdir(parents=True, exist_ok=True)
    log_path = Path(tmp_path) / f"inprocess-server-{time.monotonic_ns()}.log"
    with (
        open(log_path, "w") as log_file,
        _logging_to(log_file),
        built_service(tmp_path, env=env, args=args, http=http, logged_in=logged_in) as (
            parts,
            piddir,
        ),
    ):
        thread = threading.Thread(
            target=thread_main, args=(parts,), name="inprocess-server", daemon=True
        )
        thread.start()
        if not started.wait(START_TIMEOUT_S):
            raise RuntimeError(f"in-process server not serving in {START_TIMEOUT_S}s")
        if "error" in box:
            thread.join()
            raise RuntimeError("in-process server did not start") from box["error"]
        grpc_port, http_port = box["ports"]
        loop = box["loop"]
        try:
            yield InProcessServer(parts, grpc_port, http_port, piddir, loop, log_path)
        finally:
            loop.call_soon_threadsafe(box["stop"].set)
            thread.join(START_TIMEOUT_S)
            if thread.is_alive():
                raise AssertionError("in-process server did not stop")
            if "error" in box:
                raise AssertionError("in-process server failed") from box["error"]


def serve_for(request):
    """How a shared fixture serves the module asking: `serve_in_process` if
    the module says `IN_PROCESS = True`, else `server_proc.start_server`."""
    in_process = getattr(request.module, "IN_PROCESS", False)
    return serve_in_process if in_process else server_proc.start_server
