"""`codex-image generate` as a person and a script see it, against a server
with one slot: in a real pseudo-terminal the queued state (with its place in
line), a timer that ticks and a spinner that turns between the server's
events; and automatic retry after QUEUE_FULL, honouring the server's
RetryInfo, visible in --json output."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest
from codex_image_client import Client

from tests.support.server_proc import start_server

from .conftest import wait_for_runs

CLI = Path(sys.executable).with_name("codex-image")


@pytest.fixture
def one_slot(tmp_path, request):
    with start_server(tmp_path / "srv", args=["--max-concurrent", "1", *request.param]) as srv:
        yield srv


def hold_the_slot(srv, seconds: float) -> threading.Thread:
    """A generation taking the only slot for `seconds`, running in a thread."""

    def run():
        with Client(srv.grpc_target, timeout=30) as client:
            client.generate(f"[[fake delay={seconds}]] holder").wait()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_for_runs(srv, 1)
    return thread


def run_in_pty(cmd, env, timeout=60.0):
    """Runs cmd with stderr on a pseudo-terminal 120 columns wide (stdout a
    pipe); returns (exit code, everything the terminal received, stdout)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(
        [str(c) for c in cmd],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    received = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every writer closed the terminal
                    data = b""
                if not data:
                    break
                received += data
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
            raise AssertionError(
                f"{cmd} still running after {timeout}s:\n{received.decode()[-2000:]}"
            )
        stdout = proc.stdout.read().decode()
        return proc.wait(10), received.decode("utf-8", "replace"), stdout
    finally:
        os.close(master)
        proc.stdout.close()


@pytest.mark.parametrize("one_slot", [["--queue-limit", "4"]], indirect=True)
def test_terminal_shows_queue_place_ticking_timer_and_spinner(one_slot, tmp_path):
    holder = hold_the_slot(one_slot, 3)
    env = dict(os.environ, CODEX_IMAGE_ADDR=one_slot.grpc_target, TERM="xterm")
    code, screen, stdout = run_in_pty(
        [
            CLI,
            "generate",
            "[[fake delay=2]] a red fox",
            "-o",
            tmp_path / "out",
            "--request-id",
            "tty-1",
        ],
        env,
    )
    holder.join(30)
    assert code == 0, screen[-3000:]
    assert Path(stdout.strip()).name == "tty-1-1.png"
    # Redrawn in place: the cursor goes back up over the two-line block.
    assert "\x1b[2F" in screen and "\x1b[2K" in screen
    # Queued, with its place in line; the server says so once, yet the
    # timer on that line moves on and the spinner turns while it waits.
    queued = re.findall(r"(\S) queued, next in line \((\d+\.\d)s\)", screen)
    assert len({t for _, t in queued}) >= 5, queued
    assert len({s for s, _ in queued}) >= 3, queued
    # While codex works, between its events, the candidate's own timer ticks.
    working = re.findall(r"candidate 1 \[[#-]+\] +\d+% (\S+) \((\d+\.\d)s\)", screen)
    by_label: dict[str, set] = {}
    for label, seconds in working:
        by_label.setdefault(label, set()).add(seconds)
    assert max(len(s) for s in by_label.values()) >= 5, by_label
    assert screen.index("queued, next in line") < screen.index("generating: 1 running")
    assert re.search(r"✓ done: 1 image \(\d+\.\ds\)", screen)
    assert re.search(r"✓ candidate 1 \[#{24}\] 100% done \d+x\d+", screen)
    assert "Traceback" not in screen


@pytest.mark.parametrize("one_slot", [["--queue-limit", "0"]], indirect=True)
def test_queue_full_is_retried_after_the_servers_retry_info(one_slot, tmp_path):
    # Long enough for the refusals below to meet a full queue on a busy machine.
    holder = hold_the_slot(one_slot, 8)
    env = dict(os.environ, CODEX_IMAGE_ADDR=one_slot.grpc_target)
    # Told not to retry, it gives up at once with the reason.
    once = subprocess.run(
        [CLI, "generate", "x", "-o", tmp_path, "--retries", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert once.returncode == 1 and "RESOURCE_EXHAUSTED (QUEUE_FULL)" in once.stderr
    started = time.monotonic()
    proc = subprocess.run(
        [CLI, "generate", "a red fox", "-o", tmp_path / "out", "--json", "--request-id", "retry-1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    took = time.monotonic() - started
    holder.join(30)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    kinds = [next(iter(e)) for e in events]
    retries = [e["retry"] for e in events if "retry" in e]
    assert (
        kinds[0] == "retry" and retries[0]["reason"] == "QUEUE_FULL" and retries[0]["attempt"] == 2
    )
    assert retries[0]["delay_s"] == 5.0  # the server's RetryInfo, not a guess
    assert took >= 5.0 * len(retries)
    assert kinds.count("saved") == 1 and (tmp_path / "out" / "retry-1-1.png").exists()
