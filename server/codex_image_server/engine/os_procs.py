"""What the engine asks the operating system about processes: the one seam
between the process layer and the platform.

- `LinuxProcs` reads /proc directly (no dependency, cheap enough to poll),
  makes the server a child subreaper (prctl), so the processes of a codex
  run are reparented to it when their parent dies, and reaps a whole group
  with waitid(P_PGID).
- `PortableProcs` uses psutil and POSIX calls that Linux and macOS both have
  (getpgid, waitpid(-pgid)). There is no subreaper: a process whose parent
  dies goes to init (launchd on macOS), which reaps it, so a zombie that is
  not our child counts as gone.

`PROCS` is chosen once, at import: Linux gets LinuxProcs unless
CODEX_IMAGE_SERVER_PORTABLE_PROCS=1, which is how the tests run the portable
path on Linux too; every other platform gets PortableProcs.

Start times are opaque integers that tell a pid from its reuse; compare them
only with start times from the same implementation.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import sys
from collections.abc import Iterable

PORTABLE_ENV = "CODEX_IMAGE_SERVER_PORTABLE_PROCS"
_PR_SET_CHILD_SUBREAPER = 36


@dataclasses.dataclass(frozen=True)
class ProcStat:
    state: str  # one letter as in ps: "R", "S", "Z", ...
    ppid: int
    pgid: int
    start_time: int  # opaque: equal for one process, different after pid reuse


class LinuxProcs:
    name = "linux"

    def become_subreaper(self) -> bool:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
        except (OSError, AttributeError):
            return False

    def pids(self) -> Iterable[int]:
        return [int(n) for n in os.listdir("/proc") if n.isdigit()]

    def stat(self, pid: int) -> ProcStat | None:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                data = f.read().decode("utf-8", "replace")
        except OSError:
            return None
        # comm may contain spaces and parentheses: split after the last ')'.
        fields = data[data.rindex(")") + 2 :].split()
        return ProcStat(
            state=fields[0], ppid=int(fields[1]), pgid=int(fields[2]), start_time=int(fields[19])
        )

    def children(self, pid: int) -> list[int] | None:
        """The children of every thread of `pid`; None when the kernel does
        not say (no CONFIG_PROC_CHILDREN), so the caller scans instead."""
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            return []
        out: list[int] = []
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                    out.extend(int(c) for c in f.read().split())
            except FileNotFoundError:
                if not os.path.exists(f"/proc/{pid}/task/{tid}"):
                    continue  # the thread ended meanwhile
                return None
            except OSError:
                continue
        return out

    def environ_value(self, pid: int, name: str) -> str | None:
        prefix = f"{name}=".encode()
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                for entry in f.read().split(b"\0"):
                    if entry.startswith(prefix):
                        return entry[len(prefix) :].decode()
        except OSError:
            pass  # gone, a zombie (no environ) or not ours to read
        return None

    def reap_group(self, pgid: int) -> None:
        """Reap every exited child of ours in group `pgid`, without blocking."""
        while True:
            try:
                if os.waitid(os.P_PGID, pgid, os.WEXITED | os.WNOHANG) is None:
                    return
            except ChildProcessError:
                return

    def any_zombie_child(self) -> bool:
        try:
            # WNOWAIT: only a peek, whoever owns the child still gets its status.
            return os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return False


class PortableProcs:
    name = "portable"

    _STATES = {
        "running": "R",
        "sleeping": "S",
        "disk-sleep": "D",
        "stopped": "T",
        "tracing-stop": "t",
        "zombie": "Z",
        "dead": "X",
        "idle": "I",
        "waking": "W",
        "parked": "P",
        "locked": "L",
        "waiting": "W",
        "wake-kill": "K",
    }

    def __init__(self):
        import psutil  # noqa: PLC0415 - only this implementation needs it

        self._psutil = psutil

    def become_subreaper(self) -> bool:
        return False

    def pids(self) -> Iterable[int]:
        return self._psutil.pids()

    def stat(self, pid: int) -> ProcStat | None:
        ps = self._psutil
        try:
            proc = ps.Process(pid)
            with proc.oneshot():
                state = self._STATES.get(proc.status(), "S")
                ppid = proc.ppid()
                start = round(proc.create_time() * 100)
        except ps.ZombieProcess:
            state, ppid, start = "Z", 0, 0  # macOS tells a zombie little more
        except (ps.NoSuchProcess, ps.AccessDenied):
            return None
        try:
            pgid = os.getpgid(pid)
        except ProcessLookupError:
            return None
        except PermissionError:
            pgid = -1
        return ProcStat(state=state, ppid=ppid, pgid=pgid, start_time=start)

    def children(self, pid: int) -> list[int] | None:
        return None  # only asked with a subreaper, which this path never is

    def environ_value(self, pid: int, name: str) -> str | None:
        ps = self._psutil
        try:
            return ps.Process(pid).environ().get(name)
        except (ps.Error, OSError):
            return None  # gone, a zombie, or not ours to read

    def reap_group(self, pgid: int) -> None:
        while True:
            try:
                pid, _ = os.waitpid(-pgid, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    def any_zombie_child(self) -> bool:
        ps = self._psutil
        try:
            children = ps.Process().children()
        except ps.Error:
            return False
        for child in children:
            try:
                if child.status() == ps.STATUS_ZOMBIE:
                    return True
            except ps.ZombieProcess:
                return True
            except ps.Error:
                continue
        return False


def choose() -> LinuxProcs | PortableProcs:
    if sys.platform.startswith("linux") and os.environ.get(PORTABLE_ENV, "") not in (
        "1",
        "true",
        "yes",
    ):
        return LinuxProcs()
    return PortableProcs()


PROCS = choose()
