"""A throw-away PostgreSQL from Debian's packages: initdb into a fresh data
directory, listening on 127.0.0.1 only, trust auth for loopback.

PostgreSQL refuses to run as root, so as root the data directory belongs to
the `postgres` system user the Debian package creates, and every command
runs through `runuser`."""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import procs

DATABASE = "codex_images"


def bin_dir() -> Path:
    """Debian keeps one directory per major version; the newest wins."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: run `make cluster-deps` (apt-get install postgresql)")
    return Path(found[-1]).parent


class Postgres:
    def __init__(self, directory: Path | None = None, port: int = 0):
        self._user = "postgres" if os.geteuid() == 0 else None
        if directory is None:
            # Not under pytest's temp root: other pytest runs reset it to 0700,
            # which would lock the postgres user out of its own data mid-run.
            directory = tempfile.mkdtemp(prefix="codex-image-pg-")
            os.chmod(directory, 0o711)
        self.directory = Path(directory)
        self.data = self.directory / "data"
        self.socket_dir = self.directory / "socket"
        self.log_path = self.directory / "postgres.log"
        self.port = port or procs.free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def _as_owner(self, cmd: list[str]) -> list[str]:
        return ["runuser", "-u", self._user, "--", *cmd] if self._user else cmd

    def _chown(self, path: Path) -> None:
        if self._user:
            pw = pwd.getpwnam(self._user)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def _let_owner_reach(self) -> None:
        """Temp directories are 0700 root: add the search bit (not read) on the
        way down so the postgres user can reach its own directory."""
        if not self._user:
            return
        for parent in reversed(self.directory.resolve().parents):
            mode = parent.stat().st_mode
            if not mode & 0o001:
                os.chmod(parent, (mode & 0o7777) | 0o001)

    def init(self) -> None:
        """initdb once; a restart reuses the data directory."""
        if (self.data / "PG_VERSION").exists():
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        self._let_owner_reach()
        for path in (self.directory, self.socket_dir):
            path.mkdir(parents=True, exist_ok=True)
            self._chown(path)
        self.log_path.touch()
        self._chown(self.log_path)
        done = subprocess.run(self._as_owner([str(bin_dir() / "initdb"), "-D", str(self.data), "-U", "postgres",
                                              "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"]),
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr.strip()}")

    def start(self) -> "Postgres":
        self.init()
        # fsync off: a throw-away test cluster; the data survives a server
        # restart (what the tests exercise), not a machine crash.
        cmd = self._as_owner([str(bin_dir() / "postgres"), "-D", str(self.data), "-p", str(self.port),
                              "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.socket_dir}",
                              "-c", "fsync=off", "-c", "max_connections=200"])
        self.proc = procs.spawn(cmd, self.log_path)
        procs.wait_until(self._answers, "PostgreSQL", self.proc, self.log_path, timeout=60)
        self._create_database()
        return self

    def psql(self, sql: str, database: str = "postgres") -> subprocess.CompletedProcess:
        return subprocess.run([str(bin_dir() / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                               "-d", database, "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
                              capture_output=True, text=True)

    def _answers(self) -> bool:
        if not procs.port_open(self.port):
            return False
        return self.psql("select 1").returncode == 0

    def _create_database(self) -> None:
        if self.psql(f"select 1 from pg_database where datname = '{DATABASE}'").stdout.strip() == "1":
            return
        done = self.psql(f"create database {DATABASE}")
        if done.returncode != 0:
            raise RuntimeError(f"create database failed: {done.stderr}")

    def stop(self, fast: bool = True) -> None:
        """SIGINT is PostgreSQL's "fast" shutdown: active sessions are ended."""
        import signal  # noqa: PLC0415
        procs.stop(self.proc, sig=signal.SIGINT if fast else signal.SIGTERM)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
