"""What a stress run leaves behind, measured from outside the server: /proc
for processes, zombies, fds and RSS; the state directory for working
directories and run records; the server's stderr for its log lines."""

from __future__ import annotations

import dataclasses
import json
import os

from tests.support import procs

CLIENT_CODES_5XX = ("INTERNAL", "UNKNOWN", "DATA_LOSS", "UNIMPLEMENTED")


@dataclasses.dataclass
class Figures:
    requests: int = 0
    answers_5xx: int = 0
    unanswered: int = 0
    tracebacks_in_answers: int = 0
    non_json_log_lines: int = 0
    tracebacks_in_log: int = 0
    leftover_processes: int = 0
    zombies: int = 0
    work_dirs: int = 0
    run_records: int = 0
    breaches: int = 0  # an attack that got what it should not (tenants.py)
    limits_broken: int = 0
    slow_cancels: int = 0  # a dropped caller whose codex outlived the bound (storm.py)
    unsettled: int = 0  # slots, work dirs or codex left after the storm's bound (storm.py)
    settle_s: float = 0.0
    drop_gone_s: list = dataclasses.field(default_factory=list)
    released_s: list = dataclasses.field(default_factory=list)
    fds_before: int = 0
    fds_after: int = 0
    rss_mib_before: float = 0.0
    rss_mib_after: float = 0.0
    examples: list = dataclasses.field(default_factory=list)

    def answer(self, http_status: int | None, body: bytes | str, what: str = "") -> None:
        """One answer seen by a client: 5xx and tracebacks are counted."""
        self.requests += 1
        if http_status is None:
            self.unanswered += 1
            self._example(f"no answer {what}: {body[:200]!r}")
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        if http_status is not None and http_status >= 500:
            self.answers_5xx += 1
            self._example(f"{http_status} {what}: {text[:200]}")
        if "Traceback" in text or 'File "' in text:
            self.tracebacks_in_answers += 1
            self._example(f"traceback {what}: {text[:200]}")

    def grpc_answer(self, code_name: str, details: str, what: str = "") -> None:
        self.answer(
            500 if code_name in CLIENT_CODES_5XX else 200, details or "", f"{code_name} {what}"
        )

    def _example(self, text: str) -> None:
        if len(self.examples) < 10:
            self.examples.append(text)

    def merge(self, other: Figures) -> None:
        for field in ("requests", *self.LEFTOVERS):
            setattr(self, field, getattr(self, field) + getattr(other, field))
        self.drop_gone_s += other.drop_gone_s
        self.released_s += other.released_s
        self.settle_s = max(self.settle_s, other.settle_s)
        self.examples += other.examples[: 10 - len(self.examples)]

    LEFTOVERS = (
        "answers_5xx",
        "unanswered",
        "tracebacks_in_answers",
        "non_json_log_lines",
        "tracebacks_in_log",
        "leftover_processes",
        "zombies",
        "work_dirs",
        "run_records",
        "breaches",
        "limits_broken",
        "slow_cancels",
        "unsettled",
    )

    def failures(self, fd_slack: int = 16) -> list[str]:
        bad = [f"{name}={getattr(self, name)}" for name in self.LEFTOVERS if getattr(self, name)]
        if self.fds_after - self.fds_before > fd_slack:
            bad.append(f"fds grew {self.fds_before}->{self.fds_after}")
        return bad

    def lines(self, title: str) -> list[str]:
        out = [f"{title}: requests {self.requests}"]
        out += [
            f"{title}: {name.replace('_', ' ')} {getattr(self, name)}" for name in self.LEFTOVERS
        ]
        for figures, what in (
            (self.drop_gone_s, "their codex gone"),
            (self.released_s, "their slots back"),
        ):
            if figures:
                ms = sorted(figures)
                out.append(
                    f"{title}: callers gone {len(ms)}, {what} after them: median "
                    f"{ms[len(ms) // 2] * 1000:.0f} ms, max {ms[-1] * 1000:.0f} ms"
                )
        out.append(f"{title}: storm settled in {self.settle_s:.2f} s")
        out.append(f"{title}: fds before {self.fds_before} after {self.fds_after}")
        out.append(
            f"{title}: RSS MiB before {self.rss_mib_before:.0f} after {self.rss_mib_after:.0f}"
        )
        out += [f"{title}: example: {e}" for e in self.examples]
        return out


def fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
    except (OSError, StopIteration):
        return 0.0


# The server's own readiness probes: short, waited for by the server, no run.
_PROBES = ((b"--version",), (b"login", b"status"))


def _is_probe(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = tuple(f.read().split(b"\0")[:-1])
    except OSError:
        return False
    return any(argv[-len(probe) :] == probe for probe in _PROBES)


def processes_of(srv) -> list[int]:
    """Live processes (not zombies) that a server's codex runs started: every
    one inherits FAKE_CODEX_PIDDIR (as the server itself has it), whatever
    session it put itself in. The readiness probes the server runs now and
    then (in a session of their own too) are not runs."""
    want = str(srv.piddir)
    return [
        int(n)
        for n in os.listdir("/proc")
        if n.isdigit()
        and int(n) != srv.pid
        and procs.running(int(n))
        and procs.environ_of(int(n)).get("FAKE_CODEX_PIDDIR") == want
        and not _is_probe(int(n))
    ]


def describe(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            # The end: the arguments say what it is, the path is long.
            cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()[-160:]
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("utf-8", "replace")
        fields = stat[stat.rindex(")") + 2 :].split()
        return f"{cmd} state={fields[0]} ppid={fields[1]} pgid={fields[2]} sid={fields[3]}"
    except OSError:
        return "gone"


def read_log(text: str, figures: Figures) -> None:
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            if not isinstance(json.loads(line), dict):
                raise ValueError
        except ValueError:
            figures.non_json_log_lines += 1
            figures._example(f"log line: {line[:160]}")
        if "Traceback" in line:
            figures.tracebacks_in_log += 1


def settle(srv, figures: Figures, timeout: float = 20.0) -> None:
    """Once the load is over and the server idle: what is left behind."""

    def leftovers():
        return (
            processes_of(srv),
            procs.zombie_children(srv.pid),
            list((srv.state_dir / "work").glob("*")),
            list((srv.state_dir / "codex-runs").glob("*.json")),
        )

    # One clean sample settles it: a second look could catch what started
    # since (a new readiness probe), not what was left behind.
    settled = procs.wait_until(lambda: not any(leftovers()), timeout=timeout, interval=0.1)
    left, zombies, work, records = ([], [], [], []) if settled else leftovers()
    for pid in left[:3]:
        figures._example(f"leftover pid {pid}: {describe(pid)}")
    for path in work[:3]:
        figures._example(
            f"leftover work dir {path.name}: {sorted(p.name for p in path.rglob('*'))[:8]}"
        )
    figures.leftover_processes += len(left)
    figures.zombies += len(zombies)
    figures.work_dirs += len(work)
    figures.run_records += len(records)
    figures.fds_after = fd_count(srv.pid)
    figures.rss_mib_after = rss_mib(srv.pid)
