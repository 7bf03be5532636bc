"""A record, in the state directory, of every codex run we start.

If the server dies hard (SIGKILL, OOM), its codex runs would go on spending
the user's quota. Each run carries a random run id in its environment and a
record file is written before it is spawned; on the next start `sweep` finds
the records of servers that are gone, kills every process still carrying one
of their run ids (and the process group it leads), and drops the records.
Matching on the run id, not the pid, means a recycled pid is never touched.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
from pathlib import Path

from codex_image_server.engine.process_group import (
    RUN_ID_ENV,
    group_members,
    process_start_time,
    process_state,
    tagged_processes,
)

__all__ = ["RUN_ID_ENV", "GroupRecords"]


class GroupRecords:
    def __init__(self, state_dir: Path):
        self.dir = state_dir / "codex-runs"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.owner = {"owner_pid": os.getpid(), "owner_start": process_start_time(os.getpid())}

    def add(self) -> str:
        """Record a run about to start; returns its run id."""
        run_id = secrets.token_hex(12)
        tmp = self.dir / f".{run_id}.tmp"
        tmp.write_text(json.dumps({"run_id": run_id, "created": time.time(), **self.owner}))
        os.replace(tmp, self.dir / f"{run_id}.json")
        return run_id

    def remove(self, run_id: str) -> None:
        (self.dir / f"{run_id}.json").unlink(missing_ok=True)

    def sweep(self, timeout: float = 5.0) -> list[int]:
        """Kill what servers that are gone left running; return the pids killed."""
        stale: dict[str, Path] = {}
        for path in self.dir.glob("*.json"):
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                path.unlink(missing_ok=True)
                continue
            owner_alive = process_start_time(int(record.get("owner_pid") or 0)) == record.get(
                "owner_start"
            )
            if not owner_alive or record.get("owner_pid") == os.getpid():
                stale[record["run_id"]] = path
        killed: list[int] = []
        if stale:
            tagged = tagged_processes(set(stale))
            for pid in tagged:
                _kill(pid, group=process_group_leader(pid))
            _wait_gone(tagged, timeout)
            killed = tagged
        for path in stale.values():
            path.unlink(missing_ok=True)
        return killed


def process_group_leader(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


def _kill(pid: int, group: bool) -> None:
    try:
        # A codex run leads its own group: the group takes its children too,
        # even those codex started without our run id in their environment.
        os.killpg(pid, signal.SIGKILL) if group else os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _wait_gone(pids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(_gone(pid) for pid in pids):
            return
        time.sleep(0.01)


def _gone(pid: int) -> bool:
    """Neither `pid` nor any member of the group it leads is still running."""
    return process_state(pid) in (None, "Z") and all(s == "Z" for _, _, s in group_members(pid))
