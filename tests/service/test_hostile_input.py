"""Hostile input over gRPC: every bad request gets a status that matches its
cause, with details that fit the trailer and messages in plain words, before
anything expensive happens; nothing is spawned or left behind for it.
The shared `server` is served in-process (tests/support/inprocess_server.py);
the tests about the server process (its memory, its port, a signal, a hard
death) start their own."""

from __future__ import annotations

import os
import signal
import socket
import subprocess

import grpc
import pytest
from codeximage.v1 import image_service_pb2 as pb

from tests.support import procs
from tests.support.grpc_helpers import error_details, png, png_claiming
from tests.support.inprocess_server import serve_in_process
from tests.support.server_proc import REPO, server_command, start_server

KEY = "sk-hostile-key-1234"
MD = (("x-api-key", KEY),)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serve_in_process(
        tmp_path_factory.mktemp("hostile"), env={"CODEX_IMAGE_SERVER_API_KEY": KEY}
    ) as srv:
        yield srv


def refused(server, **fields):
    with pytest.raises(grpc.RpcError) as err:
        list(server.stub().Generate(pb.GenerateRequest(**fields), metadata=MD, timeout=30))
    return err.value


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"prompt": "a fox\x00 in the snow"}, "prompt"),
        ({"prompt": "x", "size": "1024x\x001024"}, "size"),
        (
            {"prompt": "x", "references": [pb.Reference(image=png(32, 32), label="left\x00eye")]},
            "references[0].label",
        ),
    ],
    ids=["prompt", "size", "label"],
)
def test_nul_is_refused_by_field_and_starts_nothing(server, fields, field):
    err = refused(server, **fields)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [v[0] for v in error_details(err)[1]] == [field]
    assert not server.fake_runs()
    assert not list((server.state_dir / "codex-runs").glob("*.json")), (
        "a run record was left behind"
    )


@pytest.mark.parametrize("field", ["size", "aspect", "quality", "output_format", "request_id"])
def test_a_long_value_is_not_echoed_and_details_arrive(server, field):
    err = refused(server, prompt="x", **{field: "9" * 5000})
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    info, violations = error_details(err)
    assert info is not None and [v[0] for v in violations] == [field]
    assert "9" * 100 not in err.details() and all("9" * 100 not in v[2] for v in violations)


def test_a_reference_that_is_not_an_image_says_so_in_plain_words(server):
    err = refused(server, prompt="x", references=[pb.Reference(image=b"GIF89a but not really")])
    _, violations = error_details(err)
    assert "Error" not in violations[0][2] and "image" in violations[0][2], violations


def test_a_truncated_reference_is_refused_after_admission(server):
    err = refused(
        server, prompt="x", references=[pb.Reference(image=png(64, 64, color=(9, 9, 9))[:-30])]
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(err)[1][0][:2] == ("references[0].image", "INVALID_REFERENCE")


def _peak_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def test_a_full_queue_refuses_big_references_without_decoding_them(tmp_path):
    bomb = png_claiming(8000, 8000)  # 64 MP, 64 KB: ~250 MiB once decoded
    with start_server(tmp_path, args=["--max-concurrent", "1", "--queue-limit", "0"]) as srv:
        stub = srv.stub()
        busy = stub.Generate(pb.GenerateRequest(prompt="x [[fake delay=60]]", request_id="busy"))
        assert procs.wait_until(lambda: srv.runs_of("busy"), timeout=15)
        before = _peak_rss_kib(srv.pid)
        for _ in range(3):
            with pytest.raises(grpc.RpcError) as err:
                list(
                    stub.Generate(
                        pb.GenerateRequest(prompt="x", references=[pb.Reference(image=bomb)] * 4)
                    )
                )
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        grown_mib = (_peak_rss_kib(srv.pid) - before) / 1024
        busy.cancel()
        assert grown_mib < 100, f"peak RSS grew {grown_mib:.0f} MiB for refused requests"


def test_undecodable_bytes_without_a_key_are_unauthenticated(server):
    channel = server.channel()
    raw = channel.unary_unary("/codeximage.v1.ImageService/GetImage")  # bytes in, bytes out
    with pytest.raises(grpc.RpcError) as err:
        raw(b"\xff\xff\xff\xff garbage", timeout=10)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as err:
        raw(b"\xff\xff\xff\xff garbage", metadata=MD, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    channel.close()


def test_a_grpc_port_in_use_is_one_clear_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CODEX_IMAGE_SERVER_")}
        done = subprocess.run(
            server_command(
                [
                    "--grpc-port",
                    str(port),
                    "--no-http-enabled",
                    "--state-dir",
                    str(tmp_path / "s"),
                    "--output-dir",
                    str(tmp_path / "o"),
                ]
            ),
            env=env,
            cwd=str(REPO),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert f"{port}" in done.stderr and "in use" in done.stderr


def test_calls_cut_off_by_shutdown_say_shutting_down(tmp_path):
    with start_server(tmp_path, args=["--kill-grace-ms", "300"]) as srv:
        call = srv.stub().Generate(
            pb.GenerateRequest(prompt="x [[fake delay=60]]", request_id="cut")
        )
        assert procs.wait_until(lambda: srv.runs_of("cut"), timeout=15)
        srv.proc.send_signal(signal.SIGTERM)
        with pytest.raises(grpc.RpcError) as err:
            list(call)
        srv.proc.wait(timeout=30)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE, err.value.details()
    assert error_details(err.value)[0].reason == "SHUTTING_DOWN"


def test_a_hard_death_leaves_no_working_directory_after_the_next_start(tmp_path):
    state = tmp_path / "state"
    refs = [pb.Reference(image=png(40, 40, color=(5, 6, 7)))]
    with start_server(tmp_path, state_dir=state) as first:
        call = first.stub().Generate(
            pb.GenerateRequest(prompt="x [[fake delay=60]]", request_id="dead", references=refs)
        )
        assert procs.wait_until(lambda: first.runs_of("dead"), timeout=15)
        first.kill_hard()
        left = list((state / "work").glob("dead-*"))
        assert left, "the dead server's working directory should still be there"
        with start_server(tmp_path, state_dir=state) as second:
            call2 = second.stub().Generate(
                pb.GenerateRequest(prompt="x [[fake delay=60]]", request_id="live")
            )
            assert procs.wait_until(lambda: second.runs_of("live"), timeout=15)
            assert not list((state / "work").glob("dead-*"))
            with start_server(tmp_path, state_dir=state, output_dir=tmp_path / "o3"):
                assert list((state / "work").glob("live-*")), (
                    "a live server's working directory was removed"
                )
            call2.cancel()
        call.cancel()
        procs.kill_leftover_runs(first.fake_runs())
