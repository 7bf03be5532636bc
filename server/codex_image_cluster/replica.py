"""One codex-image-server process as a replica: its ports picked by the
kernel at its first start (no race with other processes for a port chosen
in advance) and kept for restarts (so HAProxy finds it again), its own state
and codex home (its own accounts)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from . import procs


class Replica:
    def __init__(
        self,
        name: str,
        directory: Path,
        *,
        codex_bin: str = "",
        codex_home: Path | None = None,
        env: dict | None = None,
        args: list[str] | None = None,
    ):
        self.name = name
        self.directory = Path(directory)
        self.grpc_port = 0  # known once it has started
        self.http_port = 0
        self.codex_bin = codex_bin
        self.codex_home = Path(codex_home) if codex_home else None
        self.extra_env = dict(env or {})
        self.args = list(args or [])
        self.ready_file = self.directory / "ready.json"
        self.log_path = self.directory / "server.log"
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc else 0

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def environment(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CODEX_IMAGE_SERVER_")}
        env.update(
            {
                "CODEX_IMAGE_SERVER_GRPC_PORT": str(self.grpc_port),
                "CODEX_IMAGE_SERVER_PORT": str(self.http_port),
                "CODEX_IMAGE_SERVER_HTTP_ENABLED": "1",
                "CODEX_IMAGE_SERVER_OUTPUT_DIR": str(self.directory / "output"),
                "CODEX_IMAGE_SERVER_STATE_DIR": str(self.directory / "state"),
                "CODEX_IMAGE_SERVER_READY_FILE": str(self.ready_file),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.codex_bin:
            env["CODEX_IMAGE_SERVER_CODEX_BIN"] = str(self.codex_bin)
        if self.codex_home:
            env["CODEX_HOME"] = str(self.codex_home)
        env.update({k: str(v) for k, v in self.extra_env.items()})
        return env

    def start(self, timeout: float = 30.0) -> Replica:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ready_file.unlink(missing_ok=True)
        self.proc = procs.spawn(
            [sys.executable, "-m", "codex_image_server", *self.args],
            self.log_path,
            env=self.environment(),
            cwd=str(procs.REPO),
        )
        procs.wait_until(
            self.ready_file.exists, f"replica {self.name}", self.proc, self.log_path, timeout
        )
        info = json.loads(self.ready_file.read_text())
        if not self.grpc_port:
            self.grpc_port, self.http_port = info["grpc_port"], info["http_port"]
        assert (info["grpc_port"], info["http_port"]) == (self.grpc_port, self.http_port), info
        return self

    def kill(self) -> None:
        """SIGKILL, like a machine going away: no clean-up runs in it."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        procs.stop(self.proc, timeout=30)
