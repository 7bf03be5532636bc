"""The service built in this process, wired exactly as the server wires it
(`serve.build`), with the fake codex: for tests of the dataplane itself,
where a server process would only add its start-up. Codex still runs as a
real subprocess in its own process group; the surfaces' sockets are not
involved here (tests/support/inprocess_server.py adds them, in this process;
tests that need a server process start one with server_proc)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shlex
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from codex_image_server import serve, settings as settings_mod

from . import procs, server_proc

_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37
_subreaper_lock = threading.Lock()
_subreaper_users = 0
_subreaper_before = False


def _libc():
    return ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _was_subreaper() -> bool:
    libc = _libc()
    if libc is None:
        return False
    flag = ctypes.c_int(0)
    return libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0) == 0 and bool(
        flag.value
    )


@contextlib.contextmanager
def _borrowed_subreaper() -> Iterator[None]:
    """The engine makes its process a child subreaper and starts a thread
    that reaps every zombie child it did not spawn. In a test process that
    would steal the exit status of the next test's own subprocesses (a
    server's `proc.wait()` then reads 0), so once the last in-process engine
    is gone the process is what it was before."""
    global _subreaper_users, _subreaper_before
    with _subreaper_lock:
        if _subreaper_users == 0:
            _subreaper_before = _was_subreaper()
        _subreaper_users += 1
    try:
        yield
    finally:
        with _subreaper_lock:
            _subreaper_users -= 1
            libc = _libc()
            if _subreaper_users == 0 and not _subreaper_before and libc is not None:
                libc.prctl(_PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


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
    logged_in: bool = True,
) -> Iterator[tuple[serve.Parts, Path]]:
    """The parts `serve.build` makes, nothing started, and the fake codex's
    pid directory (one JSON per run). Afterwards: closed, the engine's
    reaper stopped, and every fake codex run of these parts gone.
    `logged_in`: the fake codex finds its auth.json (else it says to log in)."""
    run_dir = Path(os.path.realpath(tmp_path)) / f"inprocess-{time.monotonic_ns()}"
    run_dir.mkdir(parents=True)
    codex_home = run_dir / "codex-home"
    codex_home.mkdir()
    if logged_in:
        (codex_home / "auth.json").write_text('{"fake": true}')
    piddir = run_dir / "fake-codex-pids"
    environ = {
        "CODEX_IMAGE_SERVER_CODEX_BIN": str(_launcher(run_dir, piddir)),
        "CODEX_IMAGE_SERVER_OUTPUT_DIR": str(run_dir / "output"),
        "CODEX_IMAGE_SERVER_STATE_DIR": str(run_dir / "state"),
        "CODEX_IMAGE_SERVER_GRPC_PORT": "0",
        "CODEX_IMAGE_SERVER_PORT": "0",
        "CODEX_IMAGE_SERVER_HTTP_ENABLED": "0",
        **server_proc.FAKE_CODEX_ENV,
        **server_proc.EXTRA_ENV,
        **{k: str(v) for k, v in (env or {}).items()},
    }
    settings = settings_mod.load(list(args or []), environ)
    with _borrowed_subreaper():
        # The default account's home is read from the environment while the
        # engine is built (as in a server process, where it is inherited).
        saved = os.environ.get("CODEX_HOME")
        os.environ["CODEX_HOME"] = str(codex_home)
        try:
            parts = serve.build(settings)
        finally:
            if saved is None:
                os.environ.pop("CODEX_HOME", None)
            else:
                os.environ["CODEX_HOME"] = saved
        try:
            yield parts, piddir
        finally:
            parts.close()
            parts.engine.reaper.stop()
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
