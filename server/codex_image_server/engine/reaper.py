"""Every process the server starts goes through `popen`, and every child it
inherits as a subreaper is reaped by `reap_inherited`.

Codex starts its shells in their own session; when codex exits first, they
are reparented to us and, once they exit, stay zombies unless we wait for
them. A blind waitpid(-1) would also steal the exit status of the children
the engine and the readiness probe wait for themselves, so the reaper only
waits for zombies whose pid is not one we spawned. Spawning and reaping share
one lock: a child is registered before the reaper can ever see it exit.
"""

from __future__ import annotations

import os
import subprocess
import threading

from codex_image_server.engine.os_procs import PROCS

_lock = threading.Lock()
_own: dict[int, subprocess.Popen] = {}


def popen(argv: list[str], **kwargs) -> subprocess.Popen:
    with _lock:
        proc = subprocess.Popen(argv, **kwargs)
        _own[proc.pid] = proc
    return proc


def run(argv: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """subprocess.run, with the child registered as ours."""
    with popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _zombie_children(me: int) -> list[int]:
    # Our children as the kernel lists them (a few reads), else every process.
    kids = PROCS.children(me)
    names = [str(pid) for pid in kids] if kids is not None else os.listdir("/proc")
    found = []
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rindex(b")") + 2 :].split()
        if fields[0] == b"Z" and int(fields[1]) == me:
            found.append(int(name))
    return found


def _any_zombie_child() -> bool:
    if not hasattr(os, "waitid") or not os.path.isdir("/proc"):
        return False  # not Linux: orphans go to init, which reaps them
    try:
        # WNOWAIT: only a peek, whoever owns the child still gets its status.
        return os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return False


def reap_inherited() -> list[int]:
    """Wait for every zombie child that we did not spawn; return their pids."""
    if not _any_zombie_child():
        return []
    reaped = []
    with _lock:
        for pid in [pid for pid, proc in _own.items() if proc.returncode is not None]:
            del _own[pid]  # its owner has waited for it: the pid is free for reuse
        for pid in _zombie_children(os.getpid()):
            if pid in _own:
                continue
            try:
                if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG) is not None:
                    reaped.append(pid)
            except ChildProcessError:
                pass  # reaped meanwhile by a waitid(P_PGID) of its run
    return reaped


class ReaperThread:
    """Runs `reap_inherited` every `interval_s` and whenever nudged."""

    def __init__(self, interval_s: float = 0.25):
        self._interval = interval_s
        self._wake = threading.Event()
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="reaper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def nudge(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stopped:
            self._wake.wait(self._interval)
            self._wake.clear()
            reap_inherited()
