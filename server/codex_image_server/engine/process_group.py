"""The one place codex processes are started, signalled and reaped.

Each codex run is the leader of its own session and process group, so one
killpg reaches the npm wrapper, the native binary and anything they spawn in
the group. Codex starts its shells in sessions of their own, out of reach of
the group: those are found by the run id every process of the run carries in
its environment (RUN_ID_ENV) and signalled one by one. The server is a child
subreaper (see `become_subreaper`), so the group's grandchildren are
reparented to us when their parent dies and we can reap them too: "gone" means
no such process, not even a zombie. What the operating system is asked, and
the Linux-only parts (subreaper, waitid(P_PGID), /proc), live behind one seam:
os_procs.PROCS. Without a subreaper (macOS, or the portable path on Linux)
orphans go to init, and a zombie that is not ours counts as gone."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

from codex_image_server.engine import reaper
from codex_image_server.engine.os_procs import PROCS

_POLL_S = 0.005
_GROUP_SCAN_S = 0.05  # a scan of every process (portable path only): not every few ms
_STRAY_POLL_S = 0.05  # a scan of every environ: not every few ms
_GROUP_FIRST_S = 0.1  # how long a stop waits for the group before looking for strays
_GROUP_POLL_S = 0.001  # meanwhile: three system calls a round, and a cancel waits on it
# No KEY/TOKEN/SECRET in the name: codex strips such variables from what it
# passes to its shells, and the id is not a secret anyway.
RUN_ID_ENV = "CODEX_IMAGE_SERVER_RUN_ID"


_subreaper = False  # set once by the engine at start-up


def become_subreaper() -> bool:
    """Reparent the orphans of our children to us (Linux), so we reap them."""
    global _subreaper
    _subreaper = PROCS.become_subreaper()
    return _subreaper


def group_members(pgid: int) -> list[tuple[int, int, str]]:
    """(pid, ppid, state) of every process in group `pgid`, zombies included."""
    out = []
    for pid in PROCS.pids():
        st = PROCS.stat(pid)
        if st and st.pgid == pgid:
            out.append((pid, st.ppid, st.state))
    return out


def process_state(pid: int) -> str | None:
    """One-letter state ("R", "S", "Z", ...) or None when there is no such process."""
    st = PROCS.stat(pid)
    return st.state if st else None


def process_start_time(pid: int) -> int | None:
    """An opaque number that tells a pid from its reuse (see os_procs)."""
    st = PROCS.stat(pid)
    return st.start_time if st else None


def run_id_of(pid: int) -> str | None:
    return PROCS.environ_value(pid, RUN_ID_ENV)


def tagged_processes(run_ids: set[str]) -> list[int]:
    """Live processes carrying one of `run_ids` in their environment."""
    me = os.getpid()
    return [pid for pid in PROCS.pids() if pid != me and run_id_of(pid) in run_ids]


def tagged_descendants(run_id: str) -> list[int] | None:
    """Live processes of run `run_id`, for a subreaper once the run's group is
    gone: each of them was then reparented to us or descends from one that
    was, so our children that carry the run id, and everything below them,
    are all there is to look at. No environ of the rest of the machine is
    read: the cost follows our own processes, not the machine's. None when
    the kernel does not list children (the caller scans instead)."""
    stack = PROCS.children(os.getpid())
    if stack is None:
        return None
    found: list[int] = []
    seen: set[int] = set()
    depth0 = set(stack)
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        tagged = run_id_of(pid) == run_id
        if pid in depth0 and not tagged:
            continue  # another run's leader, a readiness probe: not this run's
        if tagged:
            found.append(pid)
        below = PROCS.children(pid)
        if below is None:
            return None
        stack.extend(below)
    return found


class ProcessGroup:
    """One codex run: a child process leading its own group, and whatever
    else carries its run id."""

    def __init__(self, argv: list[str], cwd: str, env: dict[str, str], stdin=subprocess.DEVNULL):
        self.proc = reaper.popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            close_fds=True,
        )
        self.pid = self.pgid = self.proc.pid
        self.run_id = env.get(RUN_ID_ENV, "")
        # pid -> start time: a stray's pid, once it is reaped, may be the
        # next process's (another run's codex), which must not be signalled.
        self._strays: dict[int, int | None] = {}
        self._group_gone = False  # nothing of the group left, not even a zombie
        self._strays_checked = 0.0
        self._group_checked = 0.0
        self._stop_lock = threading.Lock()
        self._stopper: threading.Thread | None = None
        self._finished = False  # finish() saw nothing of it left
        self.stop_requested = False

    def signal(self, sig: int, scan: bool = True) -> None:
        """`sig` to the group and to the run's strays; without `scan`, only
        to the strays already known (no look at other processes)."""
        try:
            os.killpg(self.pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        for pid in self._find_strays() if scan else list(self._strays):
            if not self._same_stray(pid):
                continue
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    def _find_strays(self) -> list[int]:
        """Processes of this run outside its group (a shell codex put in a
        session of its own), remembered until they are gone."""
        if self.run_id:
            found = tagged_descendants(self.run_id) if _subreaper and self._group_gone else None
            if found is None:
                found = tagged_processes({self.run_id})
            for pid in found:
                if pid != self.pid and pid not in self._strays:
                    self._strays[pid] = process_start_time(pid)
            self._strays_checked = time.monotonic()
        return list(self._strays)

    def _same_stray(self, pid: int) -> bool:
        """The process now at `pid` is the stray we found there (not a reuse)."""
        return process_start_time(pid) == self._strays.get(pid)

    def _strays_gone(self) -> bool:
        if time.monotonic() - self._strays_checked >= _STRAY_POLL_S:
            self._find_strays()
        reaper.reap_inherited()  # the ones reparented to us and dead
        self._strays = {
            pid: start
            for pid, start in self._strays.items()
            if self._same_stray(pid)
            and process_state(pid) not in (None,) + (() if _subreaper else ("Z",))
        }
        return not self._strays

    def _reap_ours(self) -> bool:
        """Reap what we can; True when nothing of the group is left, not even a zombie.

        Cheap enough to poll every few milliseconds: no process scan on Linux.
        The leader is reaped through Popen (keeping its exit status); the rest
        of the group, reparented to us as subreaper, through PROCS.reap_group."""
        if self._group_gone:
            # Never wait on this group id again: once its last member is gone
            # the number is free, and the next codex run may lead a group of
            # that id, whose exit status a waitid(P_PGID) here would steal.
            return True
        if self.proc.poll() is None:
            return False
        PROCS.reap_group(self.pgid)
        try:
            os.killpg(self.pgid, 0)  # succeeds while any member, zombie or not, exists
        except ProcessLookupError:
            self._group_gone = True
            return True
        except PermissionError:
            pass
        if _subreaper:
            return False
        # No subreaper: members orphaned to init are its to reap; once every
        # one left is a zombie, nothing of the group runs.
        now = time.monotonic()
        if now - self._group_checked < _GROUP_SCAN_S:
            return False
        self._group_checked = now
        return all(state == "Z" for _, _, state in group_members(self.pgid))

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
        # The group first, and a short wait for it: once it is gone its strays
        # are found among our own descendants, a few reads instead of every
        # process's environ; a group slow to go gets the full look at once.
        self.signal(signal.SIGTERM, scan=False)
        deadline = time.monotonic() + grace
        group_wait = time.monotonic() + min(grace, _GROUP_FIRST_S)
        while not self._reap_ours() and time.monotonic() < group_wait:
            time.sleep(_GROUP_POLL_S)
        self.signal(signal.SIGTERM)
        if self.wait_gone(max(0.0, deadline - time.monotonic())):
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
            # Finished: nothing is left to stop. Every request ends by stopping
            # its runs; a thread scanning /proc for each would be pure waste.
            if self._stopper is not None or self._finished:
                return
            self.stop_requested = True
            # The group at once; the look for strays (other processes'
            # environ) is the stopper thread's, off the caller's thread.
            self.signal(signal.SIGTERM, scan=False)
            self._stopper = threading.Thread(
                target=self.terminate, args=(grace,), name=f"stop-pg-{self.pgid}", daemon=True
            )
            self._stopper.start()

    def stop_leftovers(self, grace: float) -> None:
        """The leader exited, yet something of the run lives on (a shell in a
        session of its own still holding codex's output open): stop it the
        way a stop would, off the caller's thread, without it being a cancel."""
        with self._stop_lock:
            if self._stopper is not None or self._finished:
                return
            self._stopper = threading.Thread(
                target=self.terminate, args=(grace,), name=f"leftovers-pg-{self.pgid}", daemon=True
            )
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
        with self._stop_lock:
            self._finished = True
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
