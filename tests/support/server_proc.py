"""Start the real server as its own process on 127.0.0.1, for tests and benches.

    with start_server(tmp_path) as srv:          # fake codex, ephemeral ports
        stub = srv.stub()                         # ImageServiceStub over a real socket
        ...

`start_server(tmp_path, codex=..., env=..., args=..., http=False)`:
  codex   path of the codex binary (default: tests/support/fake_codex.py, through
          `fake_codex_launcher`)
  env     extra environment for the server (and so for codex), e.g. FAKE_CODEX_DELAY
  args    extra command-line flags, e.g. ["--max-concurrent", "2"]
  http    also start the /v1 HTTP shim on an ephemeral port (srv.http_port)
  logged_in  write $CODEX_HOME/auth.json so the fake codex says it is logged in
  command the server command (default: this interpreter's `-m codex_image_server`),
          e.g. an installed `codex-image-server` script; `cwd` its working directory
  terminal  a file descriptor (a pty's end) for the server's stdout and stderr
          instead of the log file, to see what a person at a terminal sees
The server's codex home, output and state directories live under tmp_path;
FAKE_CODEX_PIDDIR (srv.piddir) collects one JSON per fake codex run so a test
can look each process up by pid. Stopping sends SIGTERM and waits; if the
server does not stop in time it is killed and the test fails.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import py_compile
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
from codeximage.v1 import image_service_pb2_grpc

from . import procs

REPO = Path(__file__).resolve().parents[2]
FAKE_CODEX = REPO / "tests" / "support" / "fake_codex.py"
START_TIMEOUT_S = 30.0
# Environment every server started here gets, below a call's own `env`: the
# store tests set the database URL here to run the same tests on PostgreSQL.
EXTRA_ENV: dict[str, str] = {}
# Codex sees an allowlisted environment: the fake's own switches
# (FAKE_CODEX_DELAY, FAKE_CODEX_PIDDIR, ...) are let through by name.
FAKE_CODEX_ENV = {"CODEX_IMAGE_SERVER_CODEX_ENV_ALLOW": "FAKE_CODEX_*"}


@dataclasses.dataclass
class ServerProcess:
    proc: subprocess.Popen
    grpc_port: int
    http_port: int
    codex_home: Path
    output_dir: Path
    state_dir: Path
    piddir: Path
    log_path: Path
    env: dict

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(
            self.grpc_target,
            options=[
                ("grpc.max_receive_message_length", 128 * 1024 * 1024),
                ("grpc.max_send_message_length", 128 * 1024 * 1024),
            ],
        )

    def stub(self, channel: grpc.Channel | None = None):
        return image_service_pb2_grpc.ImageServiceStub(channel or self.channel())

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_records(self) -> list[dict]:
        out = []
        for line in self.log_text().splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out

    def fake_runs(self) -> list[dict]:
        """Every fake codex run so far: {pid, pgid, sid, child_pid}."""
        return fake_runs_in(self.piddir)

    def runs_of(self, request_id: str) -> list[dict]:
        """The fake codex runs of one request: its working directory is named
        `<request id>-<12 hex digits>…` (runtime/workdirs.py), so "rep-op" is
        not "rep-op-busy"."""
        own = re.compile(rf"/{re.escape(request_id)}-[0-9a-f]{{12}}(?![0-9a-f])")
        return [r for r in self.fake_runs() if own.search(r.get("cwd", ""))]

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"server did not stop within {timeout}s of SIGTERM") from None
        return self.proc.returncode

    def kill_hard(self) -> None:
        self.proc.kill()
        self.proc.wait()


def fake_runs_in(piddir: Path) -> list[dict]:
    """The fake codex runs recorded in `piddir` (FAKE_CODEX_PIDDIR)."""
    runs = []
    for path in sorted(piddir.glob("*.json")):
        with contextlib.suppress(ValueError, OSError):
            runs.append(json.loads(path.read_text()))
    return runs


def fake_codex_home(codex_home: Path, logged_in: bool) -> Path:
    """A CODEX_HOME for the fake codex; `logged_in`: it finds an auth.json
    there (else it says to log in)."""
    codex_home.mkdir(parents=True, exist_ok=True)
    if logged_in and not (codex_home / "auth.json").exists():
        (codex_home / "auth.json").write_text('{"fake": true}')
    return codex_home


def settings_env(*, codex, output_dir: Path, state_dir: Path, http: bool, env: dict | None) -> dict:
    """The CODEX_IMAGE_SERVER_* settings a test's server runs with, in a
    process of its own or in the test's: this codex, these directories,
    ephemeral ports; then EXTRA_ENV's and the test's own (`env`), which win."""
    return {
        "CODEX_IMAGE_SERVER_CODEX_BIN": str(codex),
        "CODEX_IMAGE_SERVER_GRPC_PORT": "0",
        "CODEX_IMAGE_SERVER_PORT": "0",
        "CODEX_IMAGE_SERVER_HTTP_ENABLED": "1" if http else "0",
        "CODEX_IMAGE_SERVER_OUTPUT_DIR": str(output_dir),
        "CODEX_IMAGE_SERVER_STATE_DIR": str(state_dir),
        **FAKE_CODEX_ENV,
        **EXTRA_ENV,
        **{k: str(v) for k, v in (env or {}).items()},
    }


def fake_codex_launcher(directory: Path) -> Path:
    """An executable `codex` that runs the fake with this interpreter, bypassing
    `#!/usr/bin/env python3`: behind a pyenv shim that costs ~100 ms per start,
    which would swamp what the benchmarks measure. -S skips site (the fake
    uses the standard library only). The fake is compiled once, here, next to
    the launcher, which imports that bytecode: runpy (and a plain import
    under PYTHONDONTWRITEBYTECODE) compiled the source on every run."""
    launcher = Path(directory) / "codex"
    py_compile.compile(
        str(FAKE_CODEX), cfile=str(launcher.with_name(f"{FAKE_CODEX.stem}.pyc")), doraise=True
    )
    # The script's own directory is sys.path[0]: the import finds that .pyc.
    launcher.write_text(
        f"#!{os.path.realpath(sys.executable)} -S\n"
        f"import sys\nimport {FAKE_CODEX.stem}\nsys.exit({FAKE_CODEX.stem}.main(sys.argv[1:]))\n"
    )
    launcher.chmod(0o755)
    return launcher


def server_command(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "codex_image_server", *args]


@contextlib.contextmanager
def start_server(
    tmp_path: Path,
    *,
    codex: str | os.PathLike | None = None,
    env: dict | None = None,
    args: list[str] | None = None,
    http: bool = False,
    logged_in: bool = True,
    state_dir: Path | None = None,
    output_dir: Path | None = None,
    codex_home: Path | None = None,
    command: list[str] | None = None,
    cwd: Path | None = None,
    terminal: int | None = None,
):
    srv = launch(
        tmp_path,
        codex=codex,
        env=env,
        args=args,
        http=http,
        logged_in=logged_in,
        state_dir=state_dir,
        output_dir=output_dir,
        codex_home=codex_home,
        command=command,
        cwd=cwd,
        terminal=terminal,
    )
    try:
        yield srv
    finally:
        if srv.proc.poll() is None:
            srv.stop()
        # Whatever happened, no fake codex of this server may outlive it.
        procs.kill_leftover_runs(srv.fake_runs())


def launch(
    tmp_path: Path,
    *,
    codex=None,
    env=None,
    args=None,
    http=False,
    logged_in=True,
    state_dir=None,
    output_dir=None,
    codex_home=None,
    command=None,
    cwd=None,
    terminal=None,
) -> ServerProcess:
    tmp_path = Path(tmp_path)
    run_dir = Path(os.path.realpath(tmp_path)) / f"server-{time.monotonic_ns()}"
    run_dir.mkdir(parents=True)
    codex_home = fake_codex_home(Path(codex_home or tmp_path / "codex-home"), logged_in)
    state_dir = Path(state_dir or tmp_path / "state")
    output_dir = Path(output_dir or tmp_path / "output")
    piddir = run_dir / "fake-codex-pids"  # per server: cleanup must touch only its own runs
    ready_file = run_dir / "ready.json"
    log_path = run_dir / "server.log"
    full_env = dict(os.environ)
    for name in list(full_env):
        if name.startswith("CODEX_IMAGE_SERVER_"):
            del full_env[name]  # a developer's own settings must not leak into tests
    full_env.update(
        {
            "CODEX_HOME": str(codex_home),
            "FAKE_CODEX_PIDDIR": str(piddir),
            "CODEX_IMAGE_SERVER_READY_FILE": str(ready_file),
            "PYTHONUNBUFFERED": "1",
        }
    )
    full_env.update(
        settings_env(
            codex=codex or fake_codex_launcher(run_dir),
            output_dir=output_dir,
            state_dir=state_dir,
            http=http,
            env=env,
        )
    )
    with open(log_path, "wb") as log:
        out = log if terminal is None else terminal
        proc = subprocess.Popen(
            [*command, *(args or [])] if command else server_command(list(args or [])),
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            cwd=str(cwd or REPO),
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ready_file.exists():
        if proc.poll() is not None:
            raise RuntimeError(
                f"server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError(
                f"server not ready in {START_TIMEOUT_S}s:\n{log_path.read_text()[-3000:]}"
            )
        time.sleep(0.02)
    info = json.loads(ready_file.read_text())
    return ServerProcess(
        proc,
        info["grpc_port"],
        info.get("http_port", 0),
        codex_home,
        output_dir,
        state_dir,
        piddir,
        log_path,
        full_env,
    )
