"""Every process of a run is gone from /proc when the run ends, whatever
session it put itself in, and every child the server inherits is reaped.
The fake codex's `shell=S` starts a shell in a session of its own, as the
real codex does for its `bash -lc` tool calls."""

from __future__ import annotations

import time

import grpc
import pytest
from codeximage.v1 import image_service_pb2 as pb

from tests.support import procs
from tests.support.grpc_helpers import error_details
from tests.support.server_proc import start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = {"CODEX_IMAGE_SERVER_API_KEY": "sk-hygiene-secret"}
    with start_server(
        tmp_path_factory.mktemp("hyg"), env=env, args=["--kill-grace-ms", "300"]
    ) as srv:
        yield srv


KEY = (("x-api-key", "sk-hygiene-secret"),)


def test_a_shell_codex_left_behind_is_gone_and_reaped(server, stub):
    """codex exits first; its shell is reparented to the server (a subreaper)."""
    list(
        stub.Generate(
            pb.GenerateRequest(prompt="x [[fake shell=0.3]]", request_id="shell-ok"), metadata=KEY
        )
    )
    (run,) = server.runs_of("shell-ok")
    assert run["shell_pid"] and procs.wait_until(
        lambda: not procs.exists(run["shell_pid"]), timeout=5
    ), procs.zombie_children(server.pid)


def test_the_run_ends_when_codex_exits_though_its_shell_holds_the_output(server, stub):
    """Codex fails and exits; its shell (60 s, in a session of its own)
    inherited codex's stdout. No final image stops the run early here: the
    run must end with codex, not wait for the shell or the request's deadline."""
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as err:
        list(
            stub.Generate(
                pb.GenerateRequest(
                    prompt="x [[fake delay=0.1 mode=fail shell=60]]", request_id="held"
                ),
                metadata=KEY,
                timeout=30,
            )
        )
    took = time.monotonic() - started
    assert err.value.code() != grpc.StatusCode.DEADLINE_EXCEEDED and took < 5, (
        err.value.code(),
        took,
    )
    (run,) = server.runs_of("held")
    assert procs.wait_until(lambda: procs.run_gone(run), timeout=5), [
        p for p in procs.run_pids(run) if procs.exists(p)
    ]


def test_many_runs_leave_no_zombie(server, stub):
    for i in range(6):
        list(
            stub.Generate(
                pb.GenerateRequest(prompt="x [[fake shell=0.05]]", count=2, request_id=f"z{i}"),
                metadata=KEY,
            )
        )
    assert procs.wait_until(lambda: not procs.zombie_children(server.pid), timeout=5), (
        procs.zombie_children(server.pid)
    )


def test_cancel_kills_a_shell_in_its_own_session(server, stub):
    call = stub.Generate(
        pb.GenerateRequest(
            prompt="x [[fake delay=60 shell=60 ignore_term=1]]", request_id="escape"
        ),
        metadata=KEY,
    )
    assert procs.wait_until(
        lambda: (
            server.runs_of("escape")
            and procs.running(server.runs_of("escape")[0]["shell_pid"] or 0)
        ),
        timeout=15,
    )
    (run,) = server.runs_of("escape")
    assert procs.session_of(run["shell_pid"]) not in (run["sid"], None)  # outside codex's session
    call.cancel()
    assert procs.wait_until(lambda: procs.run_gone(run), timeout=5), [
        p for p in procs.run_pids(run) if procs.exists(p)
    ]


def test_codex_sees_no_secret_of_ours(server, stub):
    call = stub.Generate(
        pb.GenerateRequest(prompt="x [[fake delay=60]]", request_id="env"), metadata=KEY
    )
    assert procs.wait_until(lambda: server.runs_of("env"), timeout=15)
    (run,) = server.runs_of("env")
    env = procs.environ_of(run["pid"])
    call.cancel()
    assert env, "could not read the fake codex's environment"
    assert "sk-hygiene-secret" not in "".join(env.values())
    assert [k for k in env if k.startswith("CODEX_IMAGE_SERVER_")] == ["CODEX_IMAGE_SERVER_RUN_ID"]


def test_a_long_prompt_is_refused_by_name(stub):
    with pytest.raises(grpc.RpcError) as err:
        list(stub.Generate(pb.GenerateRequest(prompt="a fox " * 40_000), metadata=KEY))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info, bad = error_details(err.value)
    assert [v[0] for v in bad] == ["prompt"]
    assert len(err.value.details()) < 500  # the prompt is not echoed back


def test_a_prompt_beyond_arg_max_reaches_codex_whole(tmp_path):
    prompt = "a red fox " * 20_000  # 200,000 characters: more than one argv string may hold
    with start_server(tmp_path, args=["--max-prompt-chars", "250000"]) as srv:
        list(srv.stub().Generate(pb.GenerateRequest(prompt=prompt, request_id="long")))
        (run,) = srv.runs_of("long")
        assert run["prompt_chars"] > len(prompt.strip())
