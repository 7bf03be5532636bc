"""The service built in this process, wired exactly as the server wires it
(`serve.build`), with the fake codex: for tests of the dataplane itself,
where a server process would only add its start-up. Codex still runs as a
real subprocess in its own process group; the surfaces' sockets are not
involved here (tests/support/inprocess_server.py adds them, in this process;
tests that need a server process start one with server_proc)."""

from __future__ import annotations

import contextlib
import os
import shlex
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from codex_image_server import serve, settings as settings_mod

from . import procs, server_proc


def _launcher(run_dir: Path, piddir: Path) -> Path:
    """server_proc's fake codex launcher behind a shell line that gives it
    its pid directory: the process environment is shared by every server
    built in this process, so it cannot say which one a run belongs to
    (exec keeps the pid, and the variable is in the fake's own environment,
    where kill_leftover_runs looks for it)."""
    (run_dir / "fake").mkdir()
    fake = server_proc.fake_codex_launcher(run_dir / "fake")
    launcher = run_dir / "codex"
    piddir_value, fake_path = shlex.quote(str(piddir)), shlex.quote(str(fake))
    launcher.write_text(f'#!/bin/sh\nFAKE_CODEX_PIDDIR={piddir_value} exec {fake_path} "$@"\n')
    launcher.chmod(0o755)
    return launcher


@contextlib.contextmanager
def built_service(
    tmp_path: Path,
    *,
    env: dict | None = None,
    args: list[str] | None = None,
    http: bool = False,
    logged_in: bool = True,
) -> Iterator[tuple[serve.Parts, Path]]:
    """The parts `serve.build` makes, nothing started, and the fake codex's
    pid directory (one JSON per run). Afterwards: closed, and every fake
    codex run of these parts gone. The engine does not make this process a
    subreaper: the test's own children stay its own to wait for.
    `http`: the shim's settings on (inprocess_server serves it); `logged_in`:
    the fake codex finds its auth.json (else it says to log in)."""
    run_dir = Path(os.path.realpath(tmp_path)) / f"inprocess-{time.monotonic_ns()}"
    run_dir.mkdir(parents=True)
    codex_home = server_proc.fake_codex_home(run_dir / "codex-home", logged_in)
    piddir = run_dir / "fake-codex-pids"
    environ = server_proc.settings_env(
        codex=_launcher(run_dir, piddir),
        output_dir=run_dir / "output",
        state_dir=run_dir / "state",
        http=http,
        env=env,
    )
    settings = settings_mod.load(list(args or []), environ)
    # The default account's home is read from the environment while the
    # engine is built (as in a server process, where it is inherited).
    saved = os.environ.get("CODEX_HOME")
    os.environ["CODEX_HOME"] = str(codex_home)
    try:
        parts = serve.build(settings, reap_orphans=False)
    finally:
        if saved is None:
            os.environ.pop("CODEX_HOME", None)
        else:
            os.environ["CODEX_HOME"] = saved
    try:
        yield parts, piddir
    finally:
        parts.close()
        procs.kill_leftover_runs(server_proc.fake_runs_in(piddir))


@contextlib.asynccontextmanager
async def running_service(
    tmp_path: Path, *, env: dict | None = None, args: list[str] | None = None
) -> AsyncIterator[serve.Parts]:
    """The parts of a server (Service, handlers, store) on the running loop,
    with its operations runner started; everything stopped and every fake
    codex run of it gone afterwards. `env`: CODEX_IMAGE_SERVER_* settings."""
    with built_service(tmp_path, env=env, args=args) as (parts, _):
        await parts.handlers.operations.start()
        try:
            yield parts
        finally:
            await parts.handlers.operations.stop()
