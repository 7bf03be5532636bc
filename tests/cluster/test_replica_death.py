"""SIGKILL of a replica mid-generation: its caller gets an error at once (not a
hang, not a result), HAProxy takes it out of rotation within the stated bound,
new requests keep succeeding, and its orphaned codex runs die when it restarts."""

from __future__ import annotations

import hashlib
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from codex_image_client.errors import CONNECTION_LOST, CUT_STREAM, from_rpc_error
from codex_image_client.retry import retryable
from codeximage.v1 import image_service_pb2 as pb, image_service_pb2_grpc as pbg
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support import procs
from tests.support.server_proc import REPO

from .conftest import CHECK_MS, replica_runs

# Two failed checks, each bounded by the 1 s connect timeout (refused at once here).
OUT_OF_ROTATION_S = 2 * CHECK_MS / 1000 + 1.0
# Enough mark-downs that a call caught in one would show: with
# `on-marked-down shutdown-sessions`, about 4 in 10 caught a caller.
MARK_DOWNS = 20


def out_of_rotation(cluster, replica) -> bool:
    """DOWN in HAProxy's stats. "UP 1/2" (one check failed) is still in
    rotation: calls still go there, and are redispatched after a refused connect."""
    return cluster.balancer.server_states()[f"replicas_grpc/{replica.name}"].startswith("DOWN")


class Stderr:
    """A caller's stderr, read line by line as it comes (a thread), so a test
    can wait for one line and still have all of it at the end."""

    def __init__(self, stream):
        self._lines: queue.Queue = queue.Queue()
        self._seen: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)

    def _next(self, timeout: float) -> str | None:
        line = self._lines.get(timeout=timeout)
        if line is not None:
            self._seen.append(line)
        return line

    def until(self, needle: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._next(max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(
                    f"no {needle!r} from the caller within {timeout}s: {self._seen}"
                ) from None
            if line is None:
                raise AssertionError(f"the caller ended before {needle!r}: {self._seen}")
            if needle in line:
                return

    def all(self, caller: subprocess.Popen, timeout: float) -> str:
        """Everything, once the caller has exited (TimeoutExpired if it does not)."""
        caller.wait(timeout)
        while self._next(10) is not None:
            pass
        return "".join(self._seen)


def started_streaming(caller: subprocess.Popen, needle: str) -> Stderr:
    """Waits until the caller's stderr shows the server's first answer. Only
    then is a killed replica's stream cut for it: a replica killed before it
    answered anything is an empty response to HAProxy, which sends the request
    to another replica instead (`retry-on empty-response`), so the caller
    never sees a cut."""
    err = Stderr(caller.stderr)
    err.until(needle, 30)
    return err


def finished_image_through(replica) -> pb.Image:
    with grpc.insecure_channel(replica.grpc_target) as channel:
        events = list(
            pbg.ImageServiceStub(channel).Generate(
                pb.GenerateRequest(prompt="finished [[fake delay=0.05 noise=1]]"), timeout=30
            )
        )
    return next(e.image for e in events if e.WhichOneof("event") == "image")


def test_sigkill_mid_generation(cluster, stub):
    finished = [finished_image_through(r) for r in cluster.replicas]
    call = stub.Generate(
        pb.GenerateRequest(prompt="doomed [[fake delay=60 child=1]]", request_id="doomed"),
        timeout=120,
    )
    # Its replica has answered (see started_streaming): from now on a death cuts it.
    assert next(call).HasField("progress")
    assert procs.wait_until(
        lambda: any("/doomed-" in r["cwd"] for rep in cluster.replicas for r in replica_runs(rep)),
        15,
    )
    victim = next(
        rep for rep in cluster.replicas if any("/doomed-" in r["cwd"] for r in replica_runs(rep))
    )
    orphans = [r for r in replica_runs(victim) if "/doomed-" in r["cwd"]]
    assert procs.wait_until(lambda: all(procs.running(r["child_pid"]) for r in orphans), 10)

    killed_at = time.monotonic()
    victim.kill()
    with pytest.raises(grpc.RpcError) as err:
        list(call)
    waited = time.monotonic() - killed_at
    assert waited < 2.0, f"the caller of the killed request waited {waited:.1f}s"
    # What the wire carries: HAProxy 2.6 ends the stream (its headers were
    # sent) with END_STREAM and no trailers, which grpc-core reports as UNKNOWN
    # "Stream removed (...)". The Python client and CLI read exactly that as
    # UNAVAILABLE CONNECTION_LOST, and retry it.
    assert err.value.code() == grpc.StatusCode.UNKNOWN and err.value.details().startswith(
        CUT_STREAM
    ), err.value
    seen = from_rpc_error(err.value)
    assert (seen.code, seen.reason) == (grpc.StatusCode.UNAVAILABLE, CONNECTION_LOST) and retryable(
        seen
    )

    # New requests succeed at once (a refused connection is redispatched) ...
    for i in range(4):
        last = list(
            stub.Generate(pb.GenerateRequest(prompt="after [[fake delay=0.05]]"), timeout=20)
        )[-1]
        assert last.HasField("summary")
        if i == 0:
            print(
                "first new request through the balancer done "
                f"{time.monotonic() - killed_at:.2f}s after SIGKILL"
            )
    # ... and the dead replica is out of rotation within the bound.
    assert procs.wait_until(lambda: out_of_rotation(cluster, victim), OUT_OF_ROTATION_S), (
        cluster.balancer.server_states()
    )
    print(f"out of rotation within {time.monotonic() - killed_at:.2f}s of SIGKILL")

    # Every finished image, the dead replica's too, is whole with its record.
    for image in finished:
        assert stub.GetImage(pb.GetImageRequest(image_id=image.id), timeout=10).image == image
        data = b"".join(
            c.data for c in stub.GetImageFile(pb.GetImageFileRequest(image_id=image.id), timeout=30)
        )
        assert hashlib.sha256(data).hexdigest() == image.sha256

    # Its codex runs outlive it (nobody is left to stop them) until it restarts.
    assert any(procs.running(r["child_pid"]) for r in orphans)
    victim.start()
    assert procs.wait_until(lambda: procs.all_gone(orphans), 10), orphans
    # ... which also ends the request it left running, and no other replica's.
    record = stub.GetRequest(pb.GetRequestRequest(request_id="doomed"), timeout=10).request
    assert (record.status, record.error_reason) == ("failed", "SERVER_STOPPED")
    assert procs.wait_until(
        lambda: cluster.balancer.server_states()[f"replicas_grpc/{victim.name}"] == "UP",
        OUT_OF_ROTATION_S + 2,
    ), cluster.balancer.server_states()


def test_calls_made_while_a_dead_replica_is_marked_down_all_succeed(cluster):
    """Calls keep coming while HAProxy's checks mark a dead replica down, again
    and again: each one sent to it is refused and redispatched, and none may
    fail, also not the ones being redispatched at the moment of the mark-down
    (which `on-marked-down shutdown-sessions` answered with REFUSED_STREAM)."""
    victim = cluster.replicas[0]
    server = f"replicas_grpc/{victim.name}"
    outcomes: list[str] = []
    stop = threading.Event()

    def call_in_a_loop():
        with grpc.insecure_channel(cluster.balancer.target) as channel:
            check = health_pb2_grpc.HealthStub(channel).Check
            while not stop.is_set():
                try:
                    check(health_pb2.HealthCheckRequest(), timeout=10)
                    outcomes.append("ok")
                except grpc.RpcError as exc:
                    outcomes.append(f"{exc.code().name}: {exc.details()}")

    victim.kill()
    callers = [threading.Thread(target=call_in_a_loop) for _ in range(4)]
    try:
        for t in callers:
            t.start()
        for _ in range(MARK_DOWNS):
            assert procs.wait_until(lambda: out_of_rotation(cluster, victim), OUT_OF_ROTATION_S), (
                cluster.balancer.server_states()
            )
            cluster.balancer.mark_up(server)
        assert procs.wait_until(lambda: out_of_rotation(cluster, victim), OUT_OF_ROTATION_S)
    finally:
        stop.set()
        for t in callers:
            t.join(30)
        victim.start()
    failed = [o for o in outcomes if o != "ok"]
    assert not failed and len(outcomes) > MARK_DOWNS, (len(outcomes), failed[:5])
    assert procs.wait_until(
        lambda: cluster.balancer.server_states()[server] == "UP", OUT_OF_ROTATION_S + 2
    )


def test_a_replica_killed_before_it_answers_is_replaced_unseen(cluster, stub):
    """Why the cut-stream tests wait for the caller's first answer: a replica
    that dies before answering anything is an empty response to HAProxy,
    which sends the request to another replica (`retry-on empty-response`);
    the caller gets its images and never sees a cut. Here the request is
    pinned to a stopped replica (the others drained, its checks paused), which
    is then killed."""
    victim, others = cluster.replicas[0], cluster.replicas[1:]
    balancer, server = cluster.balancer, f"replicas_grpc/{victim.name}"
    balancer.admin(f"disable health {server}")
    for rep in others:
        balancer.admin(f"set server replicas_grpc/{rep.name} state drain")
    os.kill(victim.proc.pid, signal.SIGSTOP)
    try:
        call = stub.Generate(
            pb.GenerateRequest(prompt="replayed [[fake delay=0.2]]", request_id="replayed"),
            timeout=60,
        )
        assert procs.wait_until(lambda: balancer.sessions(server) == 1, 10), (
            balancer.server_states()
        )
    finally:
        for rep in others:
            balancer.admin(f"set server replicas_grpc/{rep.name} state ready")
        victim.kill()  # a stopped process dies too, its connections closed unanswered
        balancer.admin(f"enable health {server}")
    events = list(call)
    assert events[-1].summary.status == "completed", events[-1]
    owners = [
        rep.name for rep in cluster.replicas for r in replica_runs(rep) if "/replayed-" in r["cwd"]
    ]
    assert len(owners) == 1 and owners[0] != victim.name, owners
    victim.start()
    assert procs.wait_until(lambda: balancer.server_states()[server] == "UP", OUT_OF_ROTATION_S + 2)


def test_the_cli_retries_a_generation_cut_by_its_replicas_death(cluster, tmp_path):
    """The caller of a killed request, through the balancer, is the CLI: it
    reads the cut stream as CONNECTION_LOST, waits, and tries again; the
    balancer sends the retry to a live replica, and the image arrives."""
    env = dict(os.environ, CODEX_IMAGE_ADDR=cluster.balancer.target)
    env.pop("CODEX_IMAGE_API_KEY", None)
    cli = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("codex-image")),
            "generate",
            "cut [[fake delay=3]]",
            "--request-id",
            "cut",
            "--retries",
            "2",
            "-o",
            str(tmp_path),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    victim = None
    try:
        stderr = started_streaming(cli, "generating")
        assert procs.wait_until(
            lambda: any("/cut-" in r["cwd"] for rep in cluster.replicas for r in replica_runs(rep)),
            15,
        )
        victim = next(
            rep for rep in cluster.replicas if any("/cut-" in r["cwd"] for r in replica_runs(rep))
        )
        victim.kill()
        err = stderr.all(cli, 60)
        out = cli.stdout.read()
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        if victim is not None:
            victim.start()  # its orphaned codex dies
    assert cli.returncode == 0, err
    assert "server unavailable (CONNECTION_LOST); retrying in 1s (try 2 of 3)" in err, err
    (saved,) = [Path(line) for line in out.splitlines()]
    assert saved.read_bytes().startswith(b"\x89PNG")
    # The retry ran on another replica.
    runs = [
        (rep.name, r) for rep in cluster.replicas for r in replica_runs(rep) if "/cut-" in r["cwd"]
    ]
    assert len(runs) == 2 and len({name for name, _ in runs}) == 2, runs


def go_example(target: str, prompt: str, out: Path) -> list[str]:
    go = shutil.which("go")
    assert go, "the Go toolchain is needed for the Go client"
    exe = out / "example"
    subprocess.run(
        [go, "build", "-o", str(exe), "./cmd/example"],
        cwd=REPO / "clients" / "go",
        check=True,
        capture_output=True,
        timeout=600,
    )
    return [str(exe), "-server", target, "-o", str(out), prompt]


def ts_example(target: str, prompt: str, out: Path) -> list[str]:
    ts = REPO / "clients" / "typescript"
    subprocess.run(
        [str(ts / "node_modules" / ".bin" / "tsc"), "-p", "tsconfig.json"],
        cwd=ts,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return [
        shutil.which("node"),
        str(ts / "dist" / "examples" / "generate.js"),
        prompt,
        "1",
        str(out),
    ]


@pytest.mark.parametrize("client", ["go", "ts"])
def test_go_and_typescript_callers_of_a_killed_replica_see_a_retryable_error(
    cluster, tmp_path, client
):
    """The same cut stream reaches grpc-go as Internal "server closed the
    stream without sending trailers" and Connect as Internal "protocol error:
    missing status"; both clients report it as Unavailable CONNECTION_LOST."""
    example = {"go": go_example, "ts": ts_example}[client]
    cmd = example(cluster.balancer.target, f"cut-{client} [[fake delay=60]]", tmp_path)
    env = dict(os.environ, CODEX_IMAGE_ADDR=cluster.balancer.target)
    env.pop("CODEX_IMAGE_API_KEY", None)
    caller = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    victim = None
    try:
        stderr = started_streaming(caller, "candidate 1:")
        # These callers let the server name the request, so its run is found
        # as the only one alive (earlier tests' runs are gone).
        assert procs.wait_until(
            lambda: any(
                procs.running(r["pid"]) for rep in cluster.replicas for r in replica_runs(rep)
            ),
            30,
        )
        victim = next(
            rep
            for rep in cluster.replicas
            if any(procs.running(r["pid"]) for r in replica_runs(rep))
        )
        victim.kill()
        err = stderr.all(caller, 30)
    finally:
        if caller.poll() is None:
            caller.kill()
            caller.wait()
        if victim is not None:
            victim.start()
    assert caller.returncode == 1, err
    expected = "Unavailable (CONNECTION_LOST): the connection to the server was lost mid-call"
    assert expected in err, err
