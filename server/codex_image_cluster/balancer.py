"""HAProxy (Debian's package) routing gRPC and HTTP to healthy replicas.

HAProxy rather than nginx: open-source nginx has no active health checks (only
"failed N times" on real traffic), while HAProxy polls each replica's /healthz
and takes a dead or not-ready one out within `check_ms` x 2."""

from __future__ import annotations

import shutil
import socket
import string
import subprocess
from pathlib import Path

from . import procs

TEMPLATE = procs.REPO / "cluster" / "haproxy.cfg.in"


class Balancer:
    def __init__(
        self,
        directory: Path,
        replicas: list[tuple[str, int, int]],
        port: int = 0,
        host: str = "127.0.0.1",
        check_ms: int = 500,
    ):
        """replicas: (name, grpc_port, http_port) each."""
        self.directory = Path(directory)
        self.replicas = replicas
        self.port = port or procs.free_port()
        self.host = host
        self.check_ms = check_ms
        self.config_path = self.directory / "haproxy.cfg"
        self.stats_socket = self.directory / "haproxy.sock"
        self.log_path = self.directory / "haproxy.log"
        self.proc: subprocess.Popen | None = None

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def http_base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def render(self) -> str:
        grpc = "\n".join(
            f"    server {name} 127.0.0.1:{g} proto h2 check port {h} check-proto h1"
            for name, g, h in self.replicas
        )
        http = "\n".join(f"    server {name} 127.0.0.1:{h} check" for name, _g, h in self.replicas)
        return string.Template(TEMPLATE.read_text()).substitute(
            host=self.host,
            port=self.port,
            check_ms=self.check_ms,
            stats_socket=self.stats_socket,
            grpc_servers=grpc,
            http_servers=http,
        )

    def start(self) -> Balancer:
        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not Path(haproxy).exists():
            raise RuntimeError("haproxy is not installed: run `make cluster-deps`")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.render())
        checked = subprocess.run(
            [haproxy, "-c", "-q", "-f", str(self.config_path)], capture_output=True, text=True
        )
        if checked.returncode != 0:
            raise RuntimeError(f"haproxy refused its configuration:\n{checked.stderr}")
        # -db: stay in the foreground, so stopping it is stopping this pid.
        self.proc = procs.spawn([haproxy, "-db", "-f", str(self.config_path)], self.log_path)
        # The stats socket is bound under a temporary name and renamed after the
        # listeners: wait for both, so server_states() can be asked at once.
        procs.wait_until(
            lambda: procs.port_open(self.port) and self.stats_socket.exists(),
            "haproxy",
            self.proc,
            self.log_path,
            timeout=20,
        )
        return self

    def _ask(self, command: str) -> str:
        """One command on HAProxy's stats socket, its whole answer."""
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(self.stats_socket))
            s.sendall(command.encode() + b"\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        return data.decode()

    def admin(self, command: str) -> None:
        """A command that answers nothing when it works, e.g.
        "set server replicas_grpc/r2 state drain" (no new calls to it)."""
        answer = self._ask(command).strip()
        if answer:
            raise RuntimeError(f"haproxy: {command}: {answer}")

    def mark_up(self, server: str) -> None:
        """Put "replicas_grpc/r1" back in rotation as if its checks had passed;
        the next failing checks take it out again (a mark-down on demand)."""
        self.admin(f"set server {server} health up")

    def sessions(self, server: str) -> int:
        """Calls HAProxy has on "replicas_grpc/r1" now."""
        for line in self._ask("show stat").splitlines():
            cols = line.split(",")
            if len(cols) > 4 and f"{cols[0]}/{cols[1]}" == server:
                return int(cols[4] or 0)
        raise KeyError(server)

    def server_states(self) -> dict[str, str]:
        """{"replicas_http/r1": "UP", ...} from HAProxy's own stats."""
        states = {}
        for line in self._ask("show stat").splitlines():
            cols = line.split(",")
            if (
                len(cols) > 17
                and not line.startswith("#")
                and cols[1] not in ("FRONTEND", "BACKEND")
            ):
                states[f"{cols[0]}/{cols[1]}"] = cols[17]
        return states

    def stop(self) -> None:
        procs.stop(self.proc)
        self.proc = None
