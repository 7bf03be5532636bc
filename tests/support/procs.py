"""Looking processes up by pid and process group, for tests that must prove a
codex run is gone. Independent of the server's own code on purpose."""

from __future__ import annotations

import os
import signal
import time


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    return data[data.rindex(")") + 2 :].split()


def running(pid: int) -> bool:
    """The pid exists and is not a zombie."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def exists(pid: int) -> bool:
    """The pid exists at all (a zombie counts: it has not been reaped)."""
    return _stat(pid) is not None


def group_members(pgid: int) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat(int(name))
            if fields and int(fields[2]) == pgid:
                out.append(int(name))
    return out


def wait_until(condition, timeout: float, interval: float = 0.01) -> bool:
    """Poll `condition` until true or `timeout` passes; returns the last result."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return bool(condition())
        time.sleep(interval)


def run_pids(run: dict) -> list[int]:
    """The fake codex, its grandchild and the shell it put in a session of its own."""
    return [p for p in (run.get("pid"), run.get("child_pid"), run.get("shell_pid")) if p]


def session_of(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[3]) if fields else None


def zombie_children(ppid: int) -> list[int]:
    """Zombies whose parent is `ppid`: children it never reaped."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat(int(name))
            if fields and fields[0] == "Z" and int(fields[1]) == ppid:
                out.append(int(name))
    return out


def environ_of(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return {}
    return dict(
        entry.decode("utf-8", "replace").split("=", 1)
        for entry in raw.split(b"\0")
        if b"=" in entry
    )


def run_gone(run: dict) -> bool:
    """No process of this codex run exists any more, not even as a zombie,
    and nothing is left in its process group."""
    return not any(exists(p) for p in run_pids(run)) and not group_members(run["pgid"])


def all_gone(runs: list[dict]) -> bool:
    """run_gone for every run, with one /proc scan for all their groups."""
    if any(exists(p) for r in runs for p in run_pids(r)):
        return False
    pgids = {r["pgid"] for r in runs}
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat(int(name))
            if fields and int(fields[2]) in pgids:
                return False
    return True


def kill_leftover_runs(runs: list[dict]) -> list[int]:
    """Test cleanup only: SIGKILL whatever of these runs still runs.

    Only a process that carries the run's FAKE_CODEX_PIDDIR (the fake and all
    it spawns inherit it): with pids cycling through 32,768 on a busy machine,
    a recorded pid long gone may now be anybody's, e.g. another suite's node."""
    left = []
    for run in runs:
        # once each: the leader is in both lists, and just after SIGKILL it may
        # still look alive, not yet a zombie
        for pid in dict.fromkeys(run_pids(run) + group_members(run["pgid"])):
            if running(pid) and environ_of(pid).get("FAKE_CODEX_PIDDIR") == run.get("piddir"):
                left.append(pid)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    return left


RUN_ID_ENV = "CODEX_IMAGE_SERVER_RUN_ID"


def codex_run_pids(state_dir) -> list[int]:
    """Live processes of the codex runs a server has recorded as running
    (<state_dir>/codex-runs/<run id>.json), found by the run id each of them
    carries in its environment: the server's own record, not the fake's."""
    runs = os.path.join(str(state_dir), "codex-runs")
    try:
        ids = {name[: -len(".json")] for name in os.listdir(runs) if name.endswith(".json")}
    except OSError:
        return []
    return [
        int(name)
        for name in os.listdir("/proc")
        if name.isdigit() and running(int(name)) and environ_of(int(name)).get(RUN_ID_ENV) in ids
    ]
