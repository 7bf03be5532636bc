"""`codex exec` (the engine today) against a long-lived `codex app-server`
(bench/app_server_driver.py), on the stand-in, in one run:

    .venv/bin/python bench/app_server_bench.py [--repeat 5] [--codex-version 0.171.0]

Both the way the engine would use them: the image is taken as soon as it is
final (exec: the rollout watcher's completed line, then the group is killed;
app-server: the `item/completed` imageGeneration notification, then
`turn/interrupt`). Printed, one JSON line each:
- time to first image (count 1) and to the fourth of four at once (count 4),
  medians over --repeat, and count 4 / count 1;
- RSS per concurrent candidate at count 4 (exec: the peak of the four
  process groups' summed VmRSS / 4; app-server: its group's peak / 4, and
  the part above its idle RSS / 4);
- cancel: a turn held by the stand-in (slow=30) cancelled once the model
  request is in flight: time until every process of the run is gone (exec)
  / until `turn/completed` says interrupted and what the turn started is
  gone (app-server), and whether the stand-in saw codex hang up;
- the app-server killed (SIGKILL, its pid only) with two turns in flight:
  how the candidates learn it, what is left of its process group.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from app_server_driver import AppServer, AppServerDied, children_of
from codex_image_server.engine.image_watch import RolloutWatch
from real_codex_direct import group_rss_kib

from tests.e2e import realcodex
from tests.upstream_standin import UpstreamStandin, write_codex_home

WAIT_S = 120.0


def native(version: str) -> str:
    return str(
        realcodex.native_codex(
            ROOT / ".tools" / f"codex-{version}" / "node_modules" / ".bin" / "codex"
        )
    )


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] != "Z"


class Peak:
    """The peak of a summed VmRSS over some process groups, sampled every 20 ms."""

    def __init__(self, groups):
        self._groups = groups
        self.kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.kib = max(self.kib, sum(group_rss_kib(g) for g in self._groups()))
            self._stop.wait(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


# -- codex exec ---------------------------------------------------------------


class ExecRun:
    def __init__(self, codex: str, env: dict, workdir: str, prompt: str):
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [codex, "exec", "--json", "--skip-git-repo-check", "--", prompt],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=workdir,
            start_new_session=True,
        )
        self.final = threading.Event()
        self.at = 0.0
        self._watch = None
        self._reader = threading.Thread(
            target=self._read, args=(Path(env["CODEX_HOME"]),), daemon=True
        )
        self._reader.start()

    def _read(self, home: Path) -> None:
        for raw in iter(self.proc.stdout.readline, b""):
            event = json.loads(raw) if raw.startswith(b"{") else {}
            if event.get("type") == "thread.started" and self._watch is None:
                self._watch = RolloutWatch(home, event["thread_id"], self._on_final).start()

    def _on_final(self, _final) -> None:
        self.at = time.monotonic() - self.started
        self.final.set()
        self.kill()

    def kill(self, sig=signal.SIGKILL) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def finish(self) -> None:
        self.proc.wait(timeout=30)
        self._reader.join(timeout=5)
        if self._watch is not None:
            self._watch.stop()


def exec_batch(codex: str, standin: UpstreamStandin, count: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-exec-") as tmp:
        env = dict(os.environ, **write_codex_home(Path(tmp) / "home", standin.base_url))
        start = time.monotonic()
        runs = []
        with Peak(lambda: [r.proc.pid for r in runs]) as peak:
            runs.extend(ExecRun(codex, env, tmp, f"bench image {i}") for i in range(count))
            for run in runs:
                assert run.final.wait(WAIT_S), "exec made no image"
        wall = time.monotonic() - start
        for run in runs:
            run.finish()
        return {
            "first_s": min(r.at for r in runs),
            "all_s": wall,
            "rss_mib_per_candidate": peak.kib / 1024 / count,
        }


def carrying(token: str) -> set[int]:
    """Live processes with `token` in their environment: how the engine finds
    the shells codex starts in sessions of their own (RUN_ID_ENV)."""
    needle = f"BENCH_RUN={token}".encode()
    found = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if needle in Path(f"/proc/{name}/environ").read_bytes().split(b"\0") and alive(
                    int(name)
                ):
                    found.add(int(name))
            except OSError:
                continue
    return found


def _kill(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def exec_cancel(codex: str, standin: UpstreamStandin) -> dict:
    """The engine's stop: SIGTERM to the group, then every process of the run
    found by its environment (codex's shells sit in sessions of their own)."""
    with tempfile.TemporaryDirectory(prefix="bench-exec-") as tmp:
        token = f"exec-{time.monotonic_ns()}"
        env = dict(
            os.environ, BENCH_RUN=token, **write_codex_home(Path(tmp) / "home", standin.base_url)
        )
        standin.records.clear()
        run = ExecRun(codex, env, tmp, "cancel me [[upstream: slow=30]]")
        _until(lambda: standin.records.all("responses"))
        before = carrying(token)
        at = time.monotonic()
        run.kill(signal.SIGTERM)
        group_gone = _until(
            lambda: not (carrying(token) & (children_of(run.proc.pid) | {run.proc.pid}))
        )
        escaped = carrying(token)
        _kill(escaped)
        gone = _until(lambda: not carrying(token))
        closed = _until(lambda: standin.closed_connections(), limit=5)
        run.finish()
        return {
            "processes_of_the_run": len(before),
            "group_gone_s": round(group_gone - at, 3),
            "outside_the_group_after_killpg": len(escaped),
            "cancel_to_all_gone_s": round(gone - at, 3),
            "upstream_saw_hangup": bool(standin.closed_connections()),
            "upstream_hangup_s": round(closed - at, 3) if standin.closed_connections() else None,
        }


# -- codex app-server ---------------------------------------------------------


def app_batch(server: AppServer, cwd: str, count: int) -> dict:
    cands = [server.candidate(cwd) for _ in range(count)]
    start = time.monotonic()
    with Peak(lambda: [server.pid]) as peak:
        for i, cand in enumerate(cands):
            cand.start(f"bench image {i}")
        took = []
        for cand in cands:
            _, seconds = cand.wait_image(WAIT_S)
            took.append(seconds)
            cand.interrupt()  # finish early, like the engine
        wall = time.monotonic() - start
    for cand in cands:
        cand.wait_turn_end(WAIT_S)
        cand.close()
    return {"first_s": min(took), "all_s": wall, "rss_mib_group_peak": peak.kib / 1024}


def app_cancel(server: AppServer, standin: UpstreamStandin, cwd: str) -> dict:
    standin.records.clear()
    cand = server.candidate(cwd)
    cand.start("cancel me [[upstream: slow=30]]")
    _until(lambda: standin.records.all("responses"))
    started = cand.turn_processes()
    at = time.monotonic()
    killed = cand.cancel()
    status = cand.wait_turn_end(WAIT_S)
    ended = time.monotonic()
    closed = _until(lambda: standin.closed_connections(), limit=5)
    # What the turn started may start more (a login shell's own children):
    # kill again until nothing new is left, as an engine would have to.
    rounds = 1
    while cand.turn_processes() and rounds < 50:
        _kill(cand.turn_processes())
        rounds += 1
        time.sleep(0.02)
    gone = time.monotonic()
    cand.close()
    return {
        "cancel_to_turn_end_s": round(ended - at, 3),
        "turn_status": status,
        "turn_processes_before": len(started),
        "turn_processes_killed_first": len(killed),
        "kill_rounds_until_none": rounds,
        "cancel_to_turn_processes_gone_s": round(gone - at, 3),
        "turn_processes_left": len(cand.turn_processes()),
        "upstream_saw_hangup": bool(standin.closed_connections()),
        "upstream_hangup_s": round(closed - at, 3) if standin.closed_connections() else None,
        "app_server_still_running": alive(server.pid),
    }


def app_death(codex: str, standin: UpstreamStandin) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-app-") as tmp:
        env = dict(os.environ, **write_codex_home(Path(tmp) / "home", standin.base_url))
        server = AppServer(codex, env, tmp)
        standin.records.clear()
        cands = [server.candidate(tmp) for _ in range(2)]
        for cand in cands:
            cand.start("die under me [[upstream: slow=30]]")
        _until(lambda: len(standin.records.all("responses")) >= 2)
        members = server.group()
        below = children_of(server.pid)
        at = time.monotonic()
        os.kill(server.pid, signal.SIGKILL)  # a crash: only the app-server itself
        outcomes = []
        for cand in cands:
            try:
                cand.wait_image(WAIT_S)
                outcomes.append("image")
            except AppServerDied:
                outcomes.append(f"AppServerDied after {time.monotonic() - at:.3f}s")
        left = [p for p in members if p != server.pid and alive(p)]
        closed = _until(lambda: len(standin.closed_connections()) >= 2, limit=5)
        orphans = [p for p in below if alive(p)]  # its shells, in sessions of their own
        _kill(orphans)
        server.close()
        return {
            "candidates": outcomes,
            "group_members_before": len(members),
            "group_members_left_after_crash": len(left),
            "descendants_before": len(below),
            "descendants_orphaned_alive": len(orphans),
            "upstream_hangups": len(standin.closed_connections()),
            "upstream_hangup_s": round(closed - at, 3),
        }


def _until(test, limit: float = WAIT_S, step: float = 0.005) -> float:
    deadline = time.monotonic() + limit
    while not test():
        if time.monotonic() > deadline:
            return time.monotonic()
        time.sleep(step)
    return time.monotonic()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--codex-version", default="0.171.0")
    args = parser.parse_args(argv)
    codex = native(args.codex_version)
    figures: dict[str, list[float]] = {}

    def note(name: str, value: float) -> None:
        figures.setdefault(name, []).append(value)

    with UpstreamStandin() as standin, tempfile.TemporaryDirectory(prefix="bench-app-") as tmp:
        env = dict(os.environ, **write_codex_home(Path(tmp) / "home", standin.base_url))
        started = time.monotonic()
        server = AppServer(codex, env, tmp)
        print(
            json.dumps(
                {
                    "app_server_start_s": round(time.monotonic() - started, 3),
                    "app_server_idle_rss_mib": round(group_rss_kib(server.pid) / 1024, 1),
                }
            ),
            flush=True,
        )
        try:
            app_batch(server, tmp, 1)  # warm both
            exec_batch(codex, standin, 1)
            for _ in range(args.repeat):
                idle = group_rss_kib(server.pid) / 1024
                for engine, batch in (
                    ("exec", lambda n: exec_batch(codex, standin, n)),
                    ("app_server", lambda n: app_batch(server, tmp, n)),
                ):
                    one, four = batch(1), batch(4)
                    note(f"{engine}.count1_first_image_s", one["first_s"])
                    note(f"{engine}.count4_all_images_s", four["all_s"])
                    note(f"{engine}.count4_over_count1", four["all_s"] / one["all_s"])
                    if engine == "exec":
                        note("exec.rss_mib_per_candidate", four["rss_mib_per_candidate"])
                    else:
                        note("app_server.rss_mib_per_candidate", four["rss_mib_group_peak"] / 4)
                        note(
                            "app_server.rss_mib_above_idle_per_candidate",
                            (four["rss_mib_group_peak"] - idle) / 4,
                        )
            print(
                json.dumps({k: round(statistics.median(v), 3) for k, v in sorted(figures.items())}),
                flush=True,
            )
            print(json.dumps({"exec.cancel": exec_cancel(codex, standin)}), flush=True)
            print(json.dumps({"app_server.cancel": app_cancel(server, standin, tmp)}), flush=True)
            print(
                json.dumps(
                    {
                        "app_server.rss_mib_after_runs": round(group_rss_kib(server.pid) / 1024, 1),
                        "threads_run_and_unsubscribed": 2 + 5 * args.repeat,
                    }
                ),
                flush=True,
            )
        finally:
            server.close()
        print(json.dumps({"app_server.death_mid_turn": app_death(codex, standin)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
