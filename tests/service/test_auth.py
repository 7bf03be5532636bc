"""API keys: ImageService needs one when configured; health and reflection
stay open; a non-loopback bind without a key is refused at start. The keyed
server is served in-process (tests/support/inprocess_server.py); the refusal
at start is a server process's."""

from __future__ import annotations

import subprocess

import grpc
import pytest
from codeximage.v1 import image_service_pb2 as pb
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.support.grpc_helpers import error_details
from tests.support.inprocess_server import serve_in_process
from tests.support.server_proc import REPO, server_command

KEYS = "first-key-123,second-key-456"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    with serve_in_process(
        tmp_path_factory.mktemp("keyed"), env={"CODEX_IMAGE_SERVER_API_KEY": KEYS}
    ) as srv:
        yield srv


@pytest.mark.parametrize(
    "metadata",
    [
        None,
        [("authorization", "Bearer wrong")],
        [("x-api-key", "first-key-12")],
        [("authorization", "first-key-123")],
    ],
    ids=["none", "wrong-bearer", "prefix-of-key", "no-bearer-scheme"],
)
def test_without_a_valid_key_is_unauthenticated(keyed, metadata):
    stub = keyed.stub()
    for call in (
        lambda: stub.GetCapabilities(pb.GetCapabilitiesRequest(), metadata=metadata),
        lambda: list(stub.Generate(pb.GenerateRequest(prompt="x"), metadata=metadata)),
    ):
        with pytest.raises(grpc.RpcError) as exc:
            call()
        assert exc.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error_details(exc.value)[0].reason == "UNAUTHORIZED"
    assert not keyed.fake_runs(), "an unauthenticated Generate must not start codex"


@pytest.mark.parametrize(
    "metadata",
    [[("authorization", "Bearer first-key-123")], [("x-api-key", "second-key-456")]],
    ids=["bearer", "x-api-key"],
)
def test_either_header_with_any_key_works(keyed, metadata):
    stub = keyed.stub()
    assert stub.GetCapabilities(pb.GetCapabilitiesRequest(), metadata=metadata).auth_required
    responses = list(stub.Generate(pb.GenerateRequest(prompt="x"), metadata=metadata, timeout=30))
    assert responses[-1].WhichOneof("event") == "summary"


def test_health_and_reflection_stay_open(keyed):
    channel = keyed.channel()
    status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
    assert status.status == health_pb2.HealthCheckResponse.SERVING
    answers = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = {s.name for s in next(answers).list_services_response.service}
    assert "codeximage.v1.ImageService" in names


def test_non_loopback_bind_without_key_is_refused(tmp_path):
    # Refused before anything binds: the check runs on the settings alone.
    done = subprocess.run(
        server_command(
            [
                "--grpc-host",
                "0.0.0.0",
                "--state-dir",
                str(tmp_path),
                "--output-dir",
                str(tmp_path / "o"),
            ]
        ),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert done.returncode != 0
    assert "refusing to bind 0.0.0.0 without an API key" in done.stderr
    assert "--allow-unauthenticated-remote" in done.stderr
