"""One stress run: a server with the fake codex (HTTP shim on, API key on),
then fuzzing, hostile images, stalled readers and the cancel storm against
it, then a hard death; every figure measured after the load has settled."""

from __future__ import annotations

import dataclasses
import signal
import tempfile
import time
from pathlib import Path

from codex_image_server.settings import Settings
from codeximage.v1 import image_service_pb2 as pb

from tests.support import procs
from tests.support.server_proc import start_server

from . import figures as fig, limits
from .fuzz import fuzz_grpc, fuzz_http
from .hostile import send_hostile_images, stalled_readers
from .storm import cancel_storm, cancelled_behind_a_probe
from .tenants import tenant_attacks

KEY = "sk-stress-key-0123456789"


@dataclasses.dataclass(frozen=True)
class Scale:
    fuzz_examples: int
    storm_operations: int
    hostile_rounds: int
    stalled_readers: int
    hard_death_runs: int
    announcements: int = 40
    slow_headers: int = 300
    # What scheduling may add to "a dropped caller's codex is gone in 50 ms":
    # `make stress` runs alone and holds the tight bound; the fast slice runs
    # inside `make test` on a busy machine and only catches the seconds-long kind.
    cancel_slack_s: float = 0.15


FAST = Scale(
    fuzz_examples=25,
    storm_operations=32,
    hostile_rounds=1,
    stalled_readers=2,
    hard_death_runs=2,
    announcements=10,
    slow_headers=50,
    cancel_slack_s=1.0,
)
FULL = Scale(
    fuzz_examples=400, storm_operations=400, hostile_rounds=3, stalled_readers=8, hard_death_runs=6
)
IDLE_S = 1.0


def _server(tmp: Path, extra_args: tuple = (), **kw):
    args = [
        "--kill-grace-ms",
        "200",
        "--max-concurrent",
        "8",
        "--queue-limit",
        "32",
        "--download-idle-timeout-ms",
        str(int(IDLE_S * 1000)),
        *extra_args,
    ]
    return start_server(tmp, http=True, args=args, **kw)


def _run_steps(steps, out: fig.Figures, report, failure: str) -> None:
    """Each (name, step) in turn, timed; one that raises counts in `failure`."""
    for name, step in steps:
        started = time.monotonic()
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - a falsified property is a figure, not a crash
            setattr(out, failure, getattr(out, failure) + 1)
            out._example(f"{name} failed: {type(exc).__name__}: {str(exc)[:300]}")
        report(f"stress: phase {name} took {time.monotonic() - started:.1f} s")


def load_phase(tmp: Path, scale: Scale, out: fig.Figures, report) -> None:
    with _server(tmp / "load") as srv:
        out.fds_before, out.rss_mib_before = fig.fd_count(srv.pid), fig.rss_mib(srv.pid)
        # Unkeyed first: fuzz both surfaces as a caller who has a key would,
        # and as one who does not.
        steps = [
            ("fuzz http", lambda: fuzz_http(srv.http_port, scale.fuzz_examples, out)),
            ("fuzz grpc", lambda: fuzz_grpc(srv.grpc_target, scale.fuzz_examples, out)),
            ("hostile images", lambda: send_hostile_images(srv, out, scale.hostile_rounds)),
            ("stalled readers", lambda: stalled_readers(srv, out, scale.stalled_readers, IDLE_S)),
            (
                "cancel storm",
                lambda: cancel_storm(
                    srv, scale.storm_operations, out, slack_s=scale.cancel_slack_s
                ),
            ),
        ]
        _run_steps(steps, out, report, "answers_5xx")
        fig.settle(srv, out)
    fig.read_log(srv.log_text(), out)


def keyed_phase(tmp: Path, scale: Scale, out: fig.Figures) -> None:
    with _server(tmp / "keyed", env={"CODEX_IMAGE_SERVER_API_KEY": KEY}) as srv:
        fuzz_http(srv.http_port, max(5, scale.fuzz_examples // 2), out, key=KEY)
        fuzz_grpc(srv.grpc_target, max(5, scale.fuzz_examples // 4), out, key=KEY)
        fig.settle(srv, out)
    text = srv.log_text()
    fig.read_log(text, out)
    if KEY in text:
        out.tracebacks_in_log += 1
        out._example("the API key appeared in the log")


def limits_phase(tmp: Path, scale: Scale, out: fig.Figures, report) -> None:
    """The HTTP port's limits under attack, on a server with a key."""
    with _server(
        tmp / "limits", limits.SERVER_ARGS, env={"CODEX_IMAGE_SERVER_API_KEY": KEY}
    ) as srv:
        _run_steps(
            [
                (
                    "keyless announcements",
                    lambda: report(
                        "stress: " + limits.keyless_announcements(srv, out, scale.announcements)
                    ),
                ),
                (
                    "slowloris",
                    lambda: report("stress: " + limits.slowloris(srv, out, scale.slow_headers)),
                ),
                (
                    "gzip bombs",
                    lambda: report(
                        "stress: "
                        + limits.gzip_bombs(srv, out, KEY, Settings().http_max_text_body_bytes)
                    ),
                ),
            ],
            out,
            report,
            "limits_broken",
        )
        fig.settle(srv, out)
    fig.read_log(srv.log_text(), out)


def hard_death_phase(tmp: Path, scale: Scale, out: fig.Figures) -> None:
    """SIGKILL a busy server; the next one on the same state directory must
    leave no process, working directory or run record of it."""
    state = tmp / "death-state"
    with _server(tmp / "death1", state_dir=state) as first:
        calls = [
            first.stub().Generate(
                pb.GenerateRequest(
                    prompt="x [[fake delay=60 child=1 shell=60 ignore_term=1]]",
                    request_id=f"dead{i}",
                    references=[
                        pb.Reference(
                            image=__import__("tests.support.grpc_helpers", fromlist=["png"]).png(
                                32, 32
                            )
                        )
                    ],
                )
            )
            for i in range(scale.hard_death_runs)
        ]
        procs.wait_until(lambda: len(first.fake_runs()) >= scale.hard_death_runs, timeout=30)
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait()
        with _server(tmp / "death2", state_dir=state) as second:
            procs.wait_until(lambda: not fig.processes_of(first), timeout=10)
            out.leftover_processes += len(fig.processes_of(first))
            out.work_dirs += len(list((state / "work").glob("*")))
            out.run_records += len(list((state / "codex-runs").glob("*.json")))
            fig.settle(second, out)
        for call in calls:
            call.cancel()
        procs.kill_leftover_runs(first.fake_runs())
    fig.read_log(second.log_text(), out)


def run(scale: Scale, report=print, tmp: Path | None = None) -> fig.Figures:
    tmp = Path(tmp or tempfile.mkdtemp(prefix="stress-"))
    total = fig.Figures()
    load_phase(tmp, scale, total, report)
    side = fig.Figures()
    limits_phase(tmp, scale, side, report)
    keyed_phase(tmp, scale, side)
    hard_death_phase(tmp, scale, side)
    cancelled_behind_a_probe(_server, tmp / "slow-probe", 3, side, scale.cancel_slack_s)
    tenant_attacks(tmp / "tenants", side)
    total.merge(side)
    for line in total.lines("stress"):
        report(line)
    return total
