"""The service built in this process, wired exactly as the server wires it
(`serve.build`), with the fake codex: for tests of the dataplane itself,
where a server process would only add its start-up. Codex still runs as a
real subprocess in its own process group; the surfaces' sockets are not
involved (tests that need them start a real server, server_proc)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

from codex_image_server import serve, settings as settings_mod

from . import procs, server_proc


@contextlib.asynccontextmanager
async def running_service(
    tmp_path: Path, *, env: dict | None = None, args: list[str] | None = None
) -> AsyncIterator[serve.Parts]:
    """The parts of a server (Service, handlers, store) on the running loop,
    with its operations runner started; everything stopped and every fake
    codex run of it gone afterwards. `env`: CODEX_IMAGE_SERVER_* settings."""
    run_dir = Path(os.path.realpath(tmp_path)) / f"inprocess-{time.monotonic_ns()}"
    run_dir.mkdir(parents=True)
    codex_home = run_dir / "codex-home"
    codex_home.mkdir()
    (codex_home / "auth.json").write_text('{"fake": true}')
    piddir = run_dir / "fake-codex-pids"
    environ = {
        "CODEX_IMAGE_SERVER_CODEX_BIN": str(server_proc.fake_codex_launcher(run_dir)),
        "CODEX_IMAGE_SERVER_OUTPUT_DIR": str(run_dir / "output"),
        "CODEX_IMAGE_SERVER_STATE_DIR": str(run_dir / "state"),
        "CODEX_IMAGE_SERVER_HTTP_ENABLED": "0",
        **server_proc.FAKE_CODEX_ENV,
        **server_proc.EXTRA_ENV,
        **{k: str(v) for k, v in (env or {}).items()},
    }
    settings = settings_mod.load(list(args or []), environ)
    # Codex inherits the server's own environment (engine.codex_env), as in a server process.
    inherited = {"CODEX_HOME": str(codex_home), "FAKE_CODEX_PIDDIR": str(piddir)}
    saved = {name: os.environ.get(name) for name in inherited}
    os.environ.update(inherited)
    parts = serve.build(settings)
    try:
        await parts.handlers.operations.start()
        try:
            yield parts
        finally:
            await parts.handlers.operations.stop()
    finally:
        parts.close()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        procs.kill_leftover_runs(server_proc.fake_runs_in(piddir))
