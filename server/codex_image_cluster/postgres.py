"""A throw-away PostgreSQL from Debian's packages: initdb into a fresh data
directory, listening on 127.0.0.1 only, every connection (TCP and socket)
authenticated with scram-sha-256 against a password generated per cluster.
The replicas get it inside their database URL (the server reads it; codex
never sees the server's own settings).

PostgreSQL refuses to run as root, so as root the directory belongs to the
`postgres` system user the Debian package creates (0700), every command runs
through `runuser`, and no parent directory is opened for it: the directory
is made where that user can already reach, or the start fails saying so."""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
from pathlib import Path

from . import procs

DATABASE = "codex_images"


def bin_dir() -> Path:
    """Debian keeps one directory per major version; the newest wins."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4])
    )
    if not found:
        raise RuntimeError(
            "PostgreSQL is not installed: run `make cluster-deps` (apt-get install postgresql)"
        )
    return Path(found[-1]).parent


def reachable_by(user: str, path: Path) -> bool:
    """Whether `user` may pass through every directory above `path` (the
    search bit for it as owner, group or other), judged from the modes."""
    pw = pwd.getpwnam(user)
    groups = {pw.pw_gid, *os.getgrouplist(user, pw.pw_gid)}
    for parent in path.resolve().parents:
        st = parent.stat()
        if st.st_uid == pw.pw_uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid in groups:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            return False
    return True


class Postgres:
    def __init__(self, directory: Path | None = None, port: int = 0):
        self._user = "postgres" if os.geteuid() == 0 else None
        # Not under pytest's temp root: other pytest runs reset it to 0700,
        # which would lock the postgres user out of its own data mid-run.
        self.directory = Path(
            directory if directory is not None else tempfile.mkdtemp(prefix="codex-image-pg-")
        )
        self.password = secrets.token_urlsafe(24)  # URL-safe: goes into the URL as is
        self.data = self.directory / "data"
        self.socket_dir = self.directory / "socket"
        self.log_path = self.directory / "postgres.log"
        self.port = port or procs.free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def shown_url(self) -> str:
        """The URL without its password, for a terminal or a log."""
        return f"postgresql://postgres:***@127.0.0.1:{self.port}/{DATABASE}"

    def _as_owner(self, cmd: list[str]) -> list[str]:
        return ["runuser", "-u", self._user, "--", *cmd] if self._user else cmd

    def _chown(self, path: Path) -> None:
        if self._user:
            pw = pwd.getpwnam(self._user)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def _check_owner_reaches(self) -> None:
        if self._user and not reachable_by(self._user, self.directory):
            raise RuntimeError(
                f"the {self._user} user cannot reach {self.directory}: start from a directory it "
                "can "
                "pass through (e.g. TMPDIR=/tmp); its parents are not opened for it"
            )

    def init(self) -> None:
        """initdb once; a restart reuses the data directory."""
        if (self.data / "PG_VERSION").exists():
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        self._check_owner_reaches()
        for path in (self.directory, self.socket_dir):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(path, 0o700)
            self._chown(path)
        self.log_path.touch(mode=0o600)
        self._chown(self.log_path)
        # initdb reads the password from a file only its user can read, removed at once.
        password_file = self.directory / "initdb-password"
        fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.password + "\n")
        self._chown(password_file)
        try:
            done = subprocess.run(
                self._as_owner(
                    [
                        str(bin_dir() / "initdb"),
                        "-D",
                        str(self.data),
                        "-U",
                        "postgres",
                        "--auth=scram-sha-256",
                        f"--pwfile={password_file}",
                        "--no-sync",
                        "-E",
                        "UTF8",
                        "--locale=C",
                    ]
                ),
                capture_output=True,
                text=True,
            )
        finally:
            password_file.unlink(missing_ok=True)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr.strip()}")

    def start(self) -> Postgres:
        self.init()
        # fsync off: a throw-away test cluster; the data survives a server
        # restart (what the tests exercise), not a machine crash.
        cmd = self._as_owner(
            [
                str(bin_dir() / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={self.socket_dir}",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=200",
                "-c",
                "password_encryption=scram-sha-256",
            ]
        )
        self.proc = procs.spawn(cmd, self.log_path)
        procs.wait_until(self._answers, "PostgreSQL", self.proc, self.log_path, timeout=60)
        self._create_database()
        return self

    def psql(
        self, sql: str, database: str = "postgres", password: str | None = None
    ) -> subprocess.CompletedProcess:
        """`sql` through psql over TCP, with the cluster's password (or `password`; "" for none)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        given = self.password if password is None else password
        if given:
            env["PGPASSWORD"] = given
        return subprocess.run(
            [
                str(bin_dir() / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-w",
                "-v",
                "ON_ERROR_STOP=1",
                "-qAtc",
                sql,
            ],
            capture_output=True,
            text=True,
            env=env,
        )

    def _answers(self) -> bool:
        if not procs.port_open(self.port):
            return False
        return self.psql("select 1").returncode == 0

    def _create_database(self) -> None:
        if (
            self.psql(f"select 1 from pg_database where datname = '{DATABASE}'").stdout.strip()
            == "1"
        ):
            return
        done = self.psql(f"create database {DATABASE}")
        if done.returncode != 0:
            raise RuntimeError(f"create database failed: {done.stderr}")

    def stop(self, fast: bool = True) -> None:
        """SIGINT is PostgreSQL's "fast" shutdown: active sessions are ended."""
        procs.stop(self.proc, sig=signal.SIGINT if fast else signal.SIGTERM)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
