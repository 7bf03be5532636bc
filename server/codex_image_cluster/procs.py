"""Starting a helper process with its output in a log file, waiting until it
answers, and stopping it by pid (never by name)."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_port() -> int:
    """A port free now, for a helper that binds it itself a moment later.

    Picked below the kernel's ephemeral range: there, every port-0 bind and
    outgoing connection of the processes beside us (parallel tests, other
    replicas) takes its port, and one could take this port before the helper
    binds it (HAProxy then exits with "Address already in use")."""
    low = _ephemeral_low()
    if low > 11024:
        for _ in range(50):
            port = random.randrange(10000, low)
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def spawn(
    cmd: list[str], log_path: Path, *, env: dict | None = None, cwd: str | None = None
) -> subprocess.Popen:
    """Its own session, so stop() can end the whole group it may start."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )


def wait_until(
    check, what: str, proc: subprocess.Popen | None, log_path: Path | None, timeout: float = 60.0
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{_tail(log_path)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer within {timeout:.0f}s:\n{_tail(log_path)}")
        time.sleep(0.05)


def stop(proc: subprocess.Popen | None, timeout: float = 15.0, sig: int = signal.SIGTERM) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _tail(log_path: Path | None) -> str:
    if not log_path or not Path(log_path).exists():
        return ""
    return Path(log_path).read_text(errors="replace")[-3000:]
