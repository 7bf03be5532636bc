"""The cancel storm: random cancels, deadlines, disconnects and dropped
NDJSON streams, 8 at a time, against a fake codex that starts a shell in a
session of its own (as the real codex does) and sometimes ignores SIGTERM.

Three bounds make it fail, each measured from outside the server:
- every caller that goes away (a dropped HTTP connection, a gRPC cancel
  or deadline): from the moment it left until no process runs in its
  request's work directory, at most GONE_BOUND_S plus LOAD_SLACK_S (plus
  the kill grace when its codex ignores SIGTERM); until that directory is
  removed (which happens once its slots are back), RELEASE_BOUND_S;
- once the last caller is done: no held slot (Health), no working
  directory, no run record, no codex process within SETTLE_BOUND_S;
- then no zombie child of the server (by pid, from /proc) that stays
  unreaped for ZOMBIE_PERSIST_S.

`cancelled_behind_a_probe` replays the race the storm once met by chance:
a caller leaving while its just-admitted candidate waited on a slow
readiness probe kept its slots and work directory until the probe ended
(seconds), and a codex was started for it after it had gone."""

from __future__ import annotations

import json
import os
import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
from codeximage.v1 import image_service_pb2 as pb

from tests.shim.client import abort
from tests.support import procs

from .figures import Figures, describe, processes_of, read_log

CLIENT_SIDE = ("CANCELLED", "DEADLINE_EXCEEDED")  # codes the client itself causes
GONE_BOUND_S = 0.05  # a dropped caller's codex, gone (SIGTERM heeded)
GRACE_S = 0.2  # the server's --kill-grace-ms in run.py: a deaf codex gets it, then SIGKILL
LOAD_SLACK_S = 0.15  # two shared cores: scheduling alone, not the server
RELEASE_BOUND_S = 1.0  # ... its slots back and its directory removed (by the server's disk pool)
SETTLE_BOUND_S = 3.0  # the last caller done -> no slot, directory, record or process left
ZOMBIE_WATCH_S = 1.0  # after settling, a zombie child seen ...
ZOMBIE_PERSIST_S = 0.5  # ... twice this far apart fails: the reaper's round is 0.25 s
WATCH_QUIET_S = 0.3  # a request that held nothing this long: nothing of it is still to come


def _prompt(rng: random.Random, long: bool) -> tuple[str, bool]:
    """A fake codex prompt, and whether that codex ignores SIGTERM."""
    delays = [0.05, 0.3, 1, 3, 30] if long else [0.05, 0.3, 1]
    parts = [f"delay={rng.choice(delays)}", f"shell={rng.choice([0.05, 0.5, 5, 60])}"]
    if rng.random() < 0.3:
        parts.append("child=1")
    deaf = rng.random() < 0.2
    if deaf:
        parts.append("ignore_term=1")
    if rng.random() < 0.1:
        parts.append("mode=fail")
    return f"storm [[fake {' '.join(parts)}]]", deaf


class ProcWatch:
    """One look at the work directories and at every process's working
    directory each SCAN_S, from a thread of its own: when each request last
    held anything, its work directory (<work>/<request_id>-.../, removed once
    its slots are given back) or a process running in it (seen from the
    moment it is spawned, before it has written anything)."""

    SCAN_S = 0.01

    def __init__(self, work_root, slack_s: float = LOAD_SLACK_S):
        self.slack_s = slack_s  # what scheduling alone may add to the bound on this machine
        # A looser slack loosens the release bound alike (the fast slice in `make test`).
        self.release_bound_s = RELEASE_BOUND_S + (slack_s - LOAD_SLACK_S)
        self._prefix = str(work_root) + "/"
        self._proc_seen: dict[str, float] = {}  # a process running in the request's directory
        self._dir_seen: dict[str, float] = {}  # the directory itself
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="proc-watch", daemon=True)

    def __enter__(self) -> ProcWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.SCAN_S):
            now = time.monotonic()
            try:
                held = os.listdir(self._prefix)
            except FileNotFoundError:
                held = []
            for name in held:
                self._dir_seen[name.split("-", 1)[0]] = now
            for name in os.listdir("/proc"):
                if not name.isdigit():
                    continue
                try:
                    cwd = os.readlink(f"/proc/{name}/cwd")
                except OSError:
                    continue  # gone, or a zombie (no cwd): zombies are the zombie check's
                if cwd.startswith(self._prefix):
                    self._proc_seen[cwd[len(self._prefix) :].split("-", 1)[0]] = now

    def gone_after(self, request_id: str, left_at: float) -> tuple[float, float]:
        """Seconds from `left_at` until a process of the request was last
        seen, and until its directory was (0 when not after it): waits until
        neither was seen for WATCH_QUIET_S, so a codex started late counts."""
        while True:
            now = time.monotonic()
            proc = self._proc_seen.get(request_id, 0.0)
            held = self._dir_seen.get(request_id, 0.0)
            if now - max(proc, held, left_at) >= WATCH_QUIET_S:
                return max(0.0, proc - left_at), max(0.0, held - left_at)
            time.sleep(self.SCAN_S)


def _grpc_op(
    stub, rng: random.Random, figures: Figures, lock: threading.Lock, watch: ProcWatch, tag: str
) -> None:
    action = rng.choice(["cancel", "deadline", "complete"])
    prompt, deaf = _prompt(rng, long=action != "complete")
    request = pb.GenerateRequest(prompt=prompt, count=rng.randint(1, 3), request_id=tag)
    try:
        if action == "deadline":
            list(stub.Generate(request, timeout=rng.uniform(0.05, 1.5)))
        else:
            call = stub.Generate(request, timeout=60)
            if action == "cancel":
                threading.Timer(rng.uniform(0.0, 1.5), call.cancel).start()
            for _ in call:
                pass
        code, details = "OK", ""
    except grpc.RpcError as err:
        code, details = err.code().name, err.details() or ""
    if code in CLIENT_SIDE:
        _gone_within_bound(watch, tag, time.monotonic(), deaf, f"{action} {code}", figures, lock)
    with lock:
        if code in CLIENT_SIDE:
            figures.requests += 1
        else:
            figures.grpc_answer(code, details, f"storm {action}")


def _gone_within_bound(
    watch: ProcWatch,
    tag: str,
    left_at: float,
    deaf: bool,
    what: str,
    figures: Figures,
    lock: threading.Lock,
) -> None:
    """The caller has gone (cancel, deadline, dropped socket): its codex must follow."""
    took, released = watch.gone_after(tag, left_at)
    bound = GONE_BOUND_S + watch.slack_s + (GRACE_S if deaf else 0.0)
    with lock:
        figures.drop_gone_s.append(took)
        figures.released_s.append(released)
        if took > bound:
            figures.slow_cancels += 1
            figures._example(
                f"caller {tag} ({'deaf codex, ' if deaf else ''}{what}): its codex gone "
                f"{took * 1000:.0f} ms after it left (bound {bound * 1000:.0f} ms)"
            )
        if released > watch.release_bound_s:
            figures.slow_cancels += 1
            figures._example(
                f"caller {tag} ({what}): its slots and work directory held {released * 1000:.0f} "
                "ms "
                f"after it left (bound {watch.release_bound_s * 1000:.0f} ms)"
            )


def _http_op(
    port: int,
    rng: random.Random,
    figures: Figures,
    lock: threading.Lock,
    watch: ProcWatch,
    tag: str,
) -> None:
    """A plain or NDJSON Generate that the client drops mid-way (RST)."""
    prompt, deaf = _prompt(rng, long=True)
    body = json.dumps({"prompt": prompt, "n": rng.randint(1, 2), "request_id": tag}).encode()
    stream = rng.random() < 0.5
    head = (
        f"POST /v1/images/generate{'?stream=1' if stream else ''} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(head + body)
    if stream:
        try:
            sock.recv(4096)  # the first NDJSON line (or the error), then drop the stream
        except TimeoutError:
            with lock:
                figures.answers_5xx += 1
                figures._example("an NDJSON stream sent nothing in 30 s")
    time.sleep(rng.uniform(0.0, 1.0))
    abort(sock)
    _gone_within_bound(
        watch,
        tag,
        time.monotonic(),
        deaf,
        f"dropped {'stream' if stream else 'plain'} HTTP",
        figures,
        lock,
    )
    with lock:
        figures.requests += 1


def cancel_storm(
    srv, operations: int, figures: Figures, seed: int = 10, slack_s: float = LOAD_SLACK_S
) -> None:
    rng = random.Random(seed)
    lock = threading.Lock()
    channel = srv.channel()
    stub = srv.stub(channel)
    seeds = [rng.random() for _ in range(operations)]
    # Request ids unique across runs on one state dir.
    run = f"s{seed}x{random.Random().getrandbits(32):08x}"

    def one(i: int) -> None:
        r = random.Random(seeds[i])
        if srv.http_port and r.random() < 0.4:
            _http_op(srv.http_port, r, figures, lock, watch, f"{run}drop{i}")
        else:
            _grpc_op(stub, r, figures, lock, watch, f"{run}grpc{i}")

    with (
        ProcWatch(srv.state_dir / "work", slack_s) as watch,
        ThreadPoolExecutor(max_workers=8) as pool,
    ):
        for future in [pool.submit(one, i) for i in range(operations)]:
            future.result()
    settled_after(srv, stub, figures)
    channel.close()


def _slots(stub) -> tuple[int, int]:
    slots = stub.Health(pb.HealthRequest(), timeout=10).slots
    return slots.in_use, slots.queued


def _held(srv, stub) -> list[str]:
    """What a settled server has none of, named."""
    held = []
    in_use, queued = _slots(stub)
    if in_use or queued:
        held.append(f"{in_use} slots held, {queued} queued")
    work = list((srv.state_dir / "work").glob("*"))
    if work:
        held.append(f"{len(work)} work dirs")
    records = list((srv.state_dir / "codex-runs").glob("*.json"))
    if records:
        held.append(f"{len(records)} run records")
    left = processes_of(srv)
    if left:
        held.append(f"{len(left)} codex processes")
    return held


def settled_after(srv, stub, figures: Figures) -> None:
    """The last caller is done: the server must settle within SETTLE_BOUND_S,
    then show no zombie child for ZOMBIE_WATCH_S."""
    start = time.monotonic()
    held = _held(srv, stub)
    while held and time.monotonic() - start < SETTLE_BOUND_S:
        time.sleep(0.02)
        held = _held(srv, stub)
    figures.settle_s = max(figures.settle_s, time.monotonic() - start)
    if held:
        figures.unsettled += 1
        figures._example(
            f"storm not settled {SETTLE_BOUND_S:g} s after its last caller: {', '.join(held)}"
        )
    first_seen: dict[int, float] = {}
    watch_end = time.monotonic() + ZOMBIE_WATCH_S
    while time.monotonic() < watch_end:
        now = time.monotonic()
        zombies = procs.zombie_children(srv.pid)
        first_seen = {z: first_seen.get(z, now) for z in zombies}
        lasting = [z for z, seen in first_seen.items() if now - seen >= ZOMBIE_PERSIST_S]
        if lasting:
            figures.zombies += len(lasting)
            figures._example(
                f"zombie children of the server after settling, unreaped for "
                f"{ZOMBIE_PERSIST_S:g} s: {', '.join(describe(z) for z in lasting[:3])}"
            )
            break
        time.sleep(0.02)


PROBE_DELAY_S = 2.0  # a readiness probe on a busy machine
PROBE_TTL_MS = 200  # ... asked for again and again: a candidate meets one as it starts


def cancelled_behind_a_probe(
    start_server, tmp, rounds: int, figures: Figures, slack_s: float = LOAD_SLACK_S
) -> None:
    """A caller that leaves while its candidate waits on a slow readiness
    probe (its slots just granted): the request must end at once, not when
    the probe does, and start no codex after the caller left."""
    with (
        start_server(
            tmp,
            env={"FAKE_CODEX_PROBE_DELAY": str(PROBE_DELAY_S)},
            extra_args=["--readiness-ttl-ms", str(PROBE_TTL_MS)],
        ) as srv,
        ProcWatch(srv.state_dir / "work", slack_s) as watch,
    ):
        channel = srv.channel()
        stub = srv.stub(channel)
        lock = threading.Lock()
        for i in range(rounds):
            fillers = [
                stub.Generate(
                    pb.GenerateRequest(prompt="filler [[fake delay=30]]", count=4), timeout=120
                )
                for _ in range(2)
            ]  # every slot of --max-concurrent 8
            procs.wait_until(lambda: len(processes_of(srv)) >= 8, timeout=30)
            victim = stub.Generate(
                pb.GenerateRequest(
                    prompt="victim [[fake delay=30]]", count=1, request_id=f"probe{i}x{os.getpid()}"
                ),
                timeout=120,
            )
            next(victim)  # "queued": it waits for the fillers' slots ...
            time.sleep(PROBE_TTL_MS / 1000 * 2)  # ... long enough for a probe to be due
            [f.cancel() for f in fillers]
            # Its slot granted (the filler's are back), its candidate meets the probe.
            procs.wait_until(lambda: _slots(stub) == (1, 0), timeout=30)
            time.sleep(0.1)
            victim.cancel()
            _gone_within_bound(
                watch,
                f"probe{i}x{os.getpid()}",
                time.monotonic(),
                False,
                "cancelled behind a readiness probe",
                figures,
                lock,
            )
            with lock:
                figures.requests += 2
        settled_after(srv, stub, figures)
        channel.close()
    read_log(srv.log_text(), figures)
