"""A prototype `codex app-server` engine, for measuring only (bench/app_server_bench.py).

One long-lived `codex app-server` per account (CODEX_HOME), in a process
group of its own; each candidate is a thread of it (`thread/start`) running
one turn (`turn/start`). Its image is the app-server v2 `item/completed`
notification whose item is `imageGeneration` (read with the engine's own
image_shapes). Cancel = `turn/interrupt` plus SIGKILL to every process the
app-server started after the turn began (it has no per-turn process group,
so that is the best attribution there is).

JSON-RPC over stdio, measured on 0.171.0 against the stand-in: `initialize`
-> `initialized` -> `thread/start {cwd, sandbox, approvalPolicy}` (answer:
`result.thread.id`) -> `turn/start {threadId, input: [{type: text, text}]}`
(answer: `result.turn.id`), then notifications `item/started`,
`item/completed`, `turn/completed {turn: {status}}`, all with
`params.threadId`. Not the service's engine: nothing here is used by it.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path

from codex_image_server.engine import image_shapes


def _processes() -> dict[int, tuple[int, int]]:
    """{pid: (ppid, pgid)} of every live, non-zombie process (by /proc)."""
    found: dict[int, tuple[int, int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields[0] != "Z":
            found[int(name)] = (int(fields[1]), int(fields[2]))
    return found


def children_of(root: int) -> set[int]:
    """Every live process below `root` (by /proc, not by name)."""
    parents = {pid: ppid for pid, (ppid, _) in _processes().items()}
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier and pid not in found}
        found |= frontier
    return found


class AppServerDied(Exception):
    pass


class Candidate:
    """One thread, one turn: its image, or why not."""

    def __init__(self, server: AppServer, thread_id: str):
        self.server = server
        self.thread_id = thread_id
        self.turn_id = ""
        self.events: queue.Queue = queue.Queue()
        self.started_at = 0.0
        self.before: set[int] = set()

    def start(self, prompt: str) -> None:
        self.before = children_of(self.server.pid)
        self.started_at = time.monotonic()
        answer = self.server.call(
            "turn/start", {"threadId": self.thread_id, "input": [{"type": "text", "text": prompt}]}
        )
        self.turn_id = answer["turn"]["id"]

    def wait_image(self, timeout: float) -> tuple[str, float]:
        """(saved path, seconds from turn/start) of the completed image."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            if message is None:
                raise AppServerDied("app-server ended mid-turn")
            method, params = message.get("method"), message.get("params") or {}
            if method == "item/completed":
                item = image_shapes.item_of(params.get("item") or {})
                if item is not None and item.usable:
                    return item.saved_path, time.monotonic() - self.started_at
                if item is not None and item.failed:
                    raise RuntimeError(f"image failed: {item.failure}")
            if method == "turn/completed":
                raise RuntimeError(
                    f"turn ended without an image: {params.get('turn', {}).get('status')}"
                )

    def wait_turn_end(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            message = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            if message is None:
                raise AppServerDied("app-server ended mid-turn")
            if message.get("method") == "turn/completed":
                return (message.get("params") or {}).get("turn", {}).get("status", "")

    def turn_processes(self) -> set[int]:
        return children_of(self.server.pid) - self.before

    def interrupt(self) -> bool:
        """turn/interrupt; False when the turn had already ended."""
        try:
            self.server.call("turn/interrupt", {"threadId": self.thread_id, "turnId": self.turn_id})
        except RuntimeError as exc:
            if "no active turn" in str(exc):
                return False
            raise
        return True

    def close(self) -> str:
        """Let the app-server unload the thread (`thread/unsubscribe`): a
        loaded thread keeps its memory for as long as the app-server runs."""
        self.server.forget(self.thread_id)
        return self.server.call("thread/unsubscribe", {"threadId": self.thread_id}).get(
            "status", ""
        )

    def cancel(self) -> set[int]:
        """turn/interrupt, then SIGKILL what the turn started; returns those pids."""
        self.interrupt()
        mine = self.turn_processes()
        for pid in mine:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return mine


class AppServer:
    """One `codex app-server` for one CODEX_HOME."""

    def __init__(self, codex: str, env: dict[str, str], cwd: str):
        self.proc = subprocess.Popen(
            [codex, "app-server"],
            env=env,
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pid = self.proc.pid
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._answers: dict[int, queue.Queue] = {}
        self._threads: dict[str, Candidate] = {}
        self._reader = threading.Thread(
            target=self._read, daemon=True, name=f"app-server-{self.pid}"
        )
        self._reader.start()
        self.call("initialize", {"clientInfo": {"name": "codex-image-bench", "version": "0"}})
        self._send({"method": "initialized"})

    def _send(self, message: dict) -> None:
        data = (json.dumps(message) + "\n").encode()
        with self._lock:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    def call(self, method: str, params: dict, timeout: float = 60.0) -> dict:
        ident = next(self._ids)
        answer: queue.Queue = queue.Queue()
        self._answers[ident] = answer
        try:
            self._send({"id": ident, "method": method, "params": params})
        except (BrokenPipeError, OSError) as exc:
            raise AppServerDied(str(exc)) from None
        message = answer.get(timeout=timeout)
        if message is None:
            raise AppServerDied(f"app-server ended before answering {method}")
        if "error" in message:
            raise RuntimeError(f"{method}: {message['error']}")
        return message["result"]

    def _read(self) -> None:
        for raw in iter(self.proc.stdout.readline, b""):
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            if "id" in message and "method" not in message:
                waiting = self._answers.pop(message["id"], None)
                if waiting is not None:
                    waiting.put(message)
            elif "method" in message:
                thread = (message.get("params") or {}).get("threadId")
                candidate = self._threads.get(thread)
                if candidate is not None:
                    candidate.events.put(message)
        # EOF: the app-server is gone; wake everyone who waits on it.
        for waiting in list(self._answers.values()):
            waiting.put(None)
        for candidate in list(self._threads.values()):
            candidate.events.put(None)

    def candidate(self, cwd: str) -> Candidate:
        answer = self.call(
            "thread/start", {"cwd": cwd, "sandbox": "read-only", "approvalPolicy": "never"}
        )
        made = Candidate(self, answer["thread"]["id"])
        self._threads[made.thread_id] = made
        return made

    def forget(self, thread_id: str) -> None:
        self._threads.pop(thread_id, None)

    def group(self) -> list[int]:
        """Live members of the app-server's process group."""
        return [pid for pid, (_, pgid) in _processes().items() if pgid == self.pid]

    def close(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
