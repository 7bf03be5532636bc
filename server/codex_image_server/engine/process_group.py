"""The one place codex processes are started, signalled and reaped.

Each codex run is the leader of its own session and process group, so one
killpg reaches the npm wrapper, the native binary and anything they spawn in
the group. Codex starts its shells in sessions of their own, out of reach of
the group: those are found by the run id every process of the run carries in
its environment (RUN_ID_ENV) and signalled one by one. The server is a child
subreaper (see `become_subreaper`), so all of them are reparented to us when
their parent dies and we reap them: "gone" means no entry in /proc, not a
zombie.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import threading
import time

from . import reaper

_PR_SET_CHILD_SUBREAPER = 36
_POLL_S = 0.005
_STRAY_POLL_S = 0.05  # a /proc scan of every environ: not every few ms
# No KEY/TOKEN/SECRET in the name: codex strips such variables from what it
# passes to its shells, and the id is not a secret anyway.
RUN_ID_ENV = "CODEX_IMAGE_SERVER_RUN_ID"
_PRIVATE_ENV_PREFIX = "CODEX_IMAGE_SERVER_"


def become_subreaper() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("utf-8", "replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm may contain spaces and parentheses: split after the last ')'.
    return data[data.rindex(")") + 2:].split()


def group_members(pgid: int) -> list[tuple[int, int, str]]:
    """(pid, ppid, state) of every process in group `pgid`, zombies included."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = _stat_fields(int(name))
        # fields[0]=state, [1]=ppid, [2]=pgrp
        if fields and int(fields[2]) == pgid:
            out.append((int(name), int(fields[1]), fields[0]))
    return out


def process_state(pid: int) -> str | None:
    """One-letter state ("R", "S", "Z", ...) or None when there is no such process."""
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def process_start_time(pid: int) -> int | None:
    """Clock ticks since boot at which `pid` started: tells a pid from its reuse."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def public_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The server's environment (or `base`) without its own settings (API
    keys among them): what every codex process gets to see."""
    return {k: v for k, v in (os.environ if base is None else base).items()
            if not k.startswith(_PRIVATE_ENV_PREFIX)}


def run_id_of(pid: int) -> str | None:
    prefix = f"{RUN_ID_ENV}=".encode()
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            for entry in f.read().split(b"\0"):
                if entry.startswith(prefix):
                    return entry[len(prefix):].decode()
    except OSError:
        pass  # gone, a zombie (no environ) or not ours to read
    return None


def tagged_processes(run_ids: set[str]) -> list[int]:
    """Live processes carrying one of `run_ids` in their environment."""
    me = os.getpid()
    return [int(n) for n in os.listdir("/proc")
            if n.isdigit() and int(n) != me and run_id_of(int(n)) in run_ids]


class ProcessGroup:
    """One codex run: a child process leading its own group, and whatever
    else carries its run id."""

    def __init__(self, argv: list[str], cwd: str, env: dict[str, str], stdin=subprocess.DEVNULL):
        self.proc = reaper.popen(
            argv, cwd=cwd, env=env, stdin=stdin,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True, close_fds=True)
        self.pid = self.pgid = self.proc.pid
        self.run_id = env.get(RUN_ID_ENV, "")
        self._strays: set[int] = set()
        self._strays_checked = 0.0
        self._stop_lock = threading.Lock()
        self._stopper: threading.Thread | None = None
        self.stop_requested = False

    def signal(self, sig: int) -> None:
        try:
            os.killpg(self.pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        for pid in self._find_strays():
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    def _find_strays(self) -> set[int]:
        """Processes of this run outside its group (a shell codex put in a
        session of its own), remembered until they are gone from /proc."""
        if self.run_id:
            self._strays.update(p for p in tagged_processes({self.run_id}) if p != self.pid)
            self._strays_checked = time.monotonic()
        return self._strays

    def _strays_gone(self) -> bool:
        if time.monotonic() - self._strays_checked >= _STRAY_POLL_S:
            self._find_strays()
        reaper.reap_inherited()  # the ones reparented to us and dead
        self._strays = {pid for pid in self._strays if process_state(pid) is not None}
        return not self._strays

    def _reap_ours(self) -> bool:
        """Reap what we can; True when nothing of the group is left, not even a zombie.

        Cheap enough to poll every few milliseconds: no /proc scan. The leader
        is reaped through Popen (keeping its exit status); the rest of the
        group, reparented to us as subreaper, through waitid(P_PGID)."""
        if self.proc.poll() is None:
            return False
        while True:
            try:
                if os.waitid(os.P_PGID, self.pgid, os.WEXITED | os.WNOHANG) is None:
                    break
            except ChildProcessError:
                break
        try:
            os.killpg(self.pgid, 0)  # succeeds while any member, zombie or not, exists
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        return False

    def wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if self._reap_ours() and self._strays_gone():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_S)

    def terminate(self, grace: float) -> None:
        """SIGTERM the whole group, SIGKILL after `grace`, reap everything."""
        self._strays_checked = 0.0  # look for strays now, whatever the last scan
        if self._reap_ours() and self._strays_gone():
            return
        self.signal(signal.SIGTERM)
        if self.wait_gone(grace):
            return
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            # Again each round: a stray may have forked before it died.
            self.signal(signal.SIGKILL)
            if self.wait_gone(0.2):
                return
        raise RuntimeError(f"process group {self.pgid} survived SIGKILL")

    def stop_async(self, grace: float) -> None:
        """Begin stopping now without blocking the caller (e.g. a gRPC callback):
        SIGTERM goes out at once, the escalation runs on its own thread."""
        with self._stop_lock:
            if self._stopper is not None:
                return
            self.stop_requested = True
            self.signal(signal.SIGTERM)
            self._stopper = threading.Thread(target=self.terminate, args=(grace,),
                                             name=f"stop-pg-{self.pgid}", daemon=True)
            self._stopper.start()

    def wait_stopped(self, grace: float) -> None:
        """Make sure nothing of the group is left: wait for a stop under way,
        or stop what remains now."""
        with self._stop_lock:
            stopper = self._stopper
        if stopper is not None:
            stopper.join()
        else:
            self.terminate(grace)

    def finish(self, grace: float) -> None:
        """For the reader of its output, once that output ended: nothing of the
        group is left, and the pipes are closed."""
        self.wait_stopped(grace)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
