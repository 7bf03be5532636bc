"""Readers that stop reading: they must not starve the server, and they are
dropped after the download idle timeout (real sockets, nothing mocked)."""

from __future__ import annotations

import os
import socket
import time

import grpc
import pytest
from codeximage.v1 import image_service_pb2 as pb
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support import procs
from tests.support.server_proc import start_server
from tests.support.stalled import established, has_data, stalled_download

from .client import request

STALLED = 50
IDLE_MS = 1500
# Generous for a shared 2-core machine, yet meaningful: a server whose
# workers are held by stalled readers does not answer at all until they
# leave (the failure this guards against). The tight figure is in bench/.
ANSWER_WITHIN_S = 3.0


def _big_image(srv) -> pb.Image:
    """About 25 MB of incompressible PNG from the fake codex."""
    stub = srv.stub()
    for event in stub.Generate(
        pb.GenerateRequest(prompt="big [[fake size=2900x2900 noise=1]]"), timeout=120
    ):
        if event.WhichOneof("event") == "image":
            assert event.image.byte_size > 20 * 1024 * 1024
            return event.image
    raise AssertionError("no image")


def _stalled_download(port: int, image_id: str) -> socket.socket:
    return stalled_download(port, f"/v1/images/{image_id}/file")


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.fixture(scope="module")
def short_idle(tmp_path_factory):
    with start_server(
        tmp_path_factory.mktemp("short-idle"),
        http=True,
        args=["--download-idle-timeout-ms", str(IDLE_MS)],
    ) as srv:
        yield srv, _big_image(srv)


@pytest.fixture(scope="module")
def long_idle(tmp_path_factory):
    with start_server(tmp_path_factory.mktemp("long-idle"), http=True) as srv:  # idle timeout 30 s
        yield srv, _big_image(srv)


def _timed(call) -> float:
    started = time.monotonic()
    call()
    return time.monotonic() - started


def test_health_and_capabilities_answer_while_50_downloads_are_stalled(long_idle):
    srv, image = long_idle
    socks = [_stalled_download(srv.http_port, image.id) for _ in range(STALLED)]
    try:
        # Every download has started: its first bytes wait unread in our buffer.
        assert procs.wait_until(lambda: all(has_data(s) for s in socks), timeout=30)
        channel = srv.channel()
        health = health_pb2_grpc.HealthStub(channel)
        stub = srv.stub(channel)
        calls = {
            "grpc.health": lambda: health.Check(
                health_pb2.HealthCheckRequest(), timeout=ANSWER_WITHIN_S
            ),
            "GetCapabilities": lambda: stub.GetCapabilities(
                pb.GetCapabilitiesRequest(), timeout=ANSWER_WITHIN_S
            ),
            "Health": lambda: stub.Health(pb.HealthRequest(), timeout=ANSWER_WITHIN_S),
            "/healthz": lambda: request(srv.http_base, "GET", "/healthz", timeout=ANSWER_WITHIN_S),
            "/v1/capabilities": lambda: request(
                srv.http_base, "GET", "/v1/capabilities", timeout=ANSWER_WITHIN_S
            ),
        }
        for _ in range(3):
            for name, call in calls.items():
                assert _timed(call) < ANSWER_WITHIN_S, name
        # Still stalled, not finished: the answers did not come from an idle server.
        assert all(established(s) for s in socks)
        channel.close()
    finally:
        for s in socks:
            s.close()


def test_a_stalled_download_is_closed_after_the_idle_timeout(short_idle):
    srv, image = short_idle
    baseline = _fds(srv.pid)
    sock = _stalled_download(srv.http_port, image.id)
    try:
        assert procs.wait_until(lambda: has_data(sock), timeout=10)
        started = time.monotonic()
        # The server resets the connection: our socket leaves ESTABLISHED.
        assert procs.wait_until(lambda: not established(sock), timeout=IDLE_MS / 1000 + 15)
        assert time.monotonic() - started >= IDLE_MS / 1000 * 0.8, "closed before the idle timeout"
        assert procs.wait_until(lambda: _fds(srv.pid) <= baseline, timeout=10), (
            "the server kept the connection"
        )
        assert any(
            r.get("event") == "download.idle_dropped" and r.get("via") == "http"
            for r in srv.log_records()
        )
    finally:
        sock.close()
    # A reader that reads is not dropped: the whole file arrives.
    reply = request(srv.http_base, "GET", f"/v1/images/{image.id}/file")
    assert reply.status == 200 and len(reply.body) == image.byte_size


def test_a_stalled_getimagefile_stream_is_ended_after_the_idle_timeout(short_idle):
    srv, image = short_idle
    channel = srv.channel()
    try:
        call = srv.stub(channel).GetImageFile(pb.GetImageFileRequest(image_id=image.id), timeout=60)
        first = next(call)
        assert first.total_size == image.byte_size
        # Read nothing more: flow control stops the server, the idle timer ends the stream.
        assert procs.wait_until(
            lambda: any(
                r.get("event") == "download.idle_dropped" and r.get("via") == "GetImageFile"
                for r in srv.log_records()
            ),
            timeout=IDLE_MS / 1000 + 15,
        )
        received = len(first.data)
        with pytest.raises(grpc.RpcError) as exc:
            for chunk in call:
                received += len(chunk.data)
        assert exc.value.code() == grpc.StatusCode.CANCELLED
        assert received < image.byte_size
    finally:
        channel.close()
