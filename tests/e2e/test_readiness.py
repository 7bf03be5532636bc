"""Readiness as the real codex reports it: `codex login status` exits 1 both
with no login and with the mock provider (FINDINGS.md §4), so the server must
tell the two apart itself."""

from __future__ import annotations

import os
from pathlib import Path

import grpc
import pytest
from codeximage.v1 import image_service_pb2 as pb
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.server_proc import start_server

from . import realcodex
from .calls import CALL_TIMEOUT_S, generate

pytestmark = pytest.mark.realcodex

SERVICE = "codeximage.v1.ImageService"


def _grpc_health(srv, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(srv.channel())
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=CALL_TIMEOUT_S).status


@pytest.fixture(scope="module")
def unconfigured_server(tmp_path_factory, real_codex):
    """Real codex, an empty CODEX_HOME: no auth.json, no provider configured."""
    home = Path(os.path.realpath(tmp_path_factory.mktemp("empty-codex-home")))
    env = {"MOCK_API_KEY": ""}  # nothing from a developer's shell may make it ready
    try:
        with start_server(
            tmp_path_factory.mktemp("unconfigured"),
            codex=realcodex.native_codex(real_codex),
            codex_home=home,
            logged_in=False,
            env=env,
        ) as srv:
            yield srv
    finally:
        realcodex.kill_groups(realcodex.processes_with_codex_home(home))


def test_not_logged_in_is_not_serving(unconfigured_server, real_codex):
    assert _grpc_health(unconfigured_server, SERVICE) == health_pb2.HealthCheckResponse.NOT_SERVING
    health = unconfigured_server.stub().Health(pb.HealthRequest(), timeout=CALL_TIMEOUT_S)
    assert not health.ready
    assert (
        health.codex.found
        and health.codex.version == f"codex-cli {realcodex.package_version(real_codex)}"
    )
    assert not health.codex.logged_in and not health.codex.custom_provider
    assert "codex login" in health.problem


def test_the_login_fix_is_the_short_path_readme_gives(unconfigured_server):
    """The server runs the native binary deep inside the pinned npm package;
    the command it tells a person to run is the package's short wrapper,
    relative to the checkout it runs in, as README writes it."""
    health = unconfigured_server.stub().Health(pb.HealthRequest(), timeout=CALL_TIMEOUT_S)
    home = unconfigured_server.env["CODEX_HOME"]
    # The pinned .tools/codex, or the matrix's .tools/codex-<version> under `make test-codex`.
    wrapper = realcodex.selected_wrapper().relative_to(realcodex.REPO)
    assert f"Run `CODEX_HOME={home} {wrapper} login`" in health.problem, health.problem
    assert (
        ".tools/codex/node_modules/.bin/codex login" in (realcodex.REPO / "README.md").read_text()
    )


def test_not_logged_in_generate_is_failed_precondition_naming_codex_login(unconfigured_server):
    with pytest.raises(grpc.RpcError) as caught:
        generate(unconfigured_server.stub(), prompt="a cat", count=1)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION, caught.value.details()
    assert "codex login" in caught.value.details()
    # Refused up front: no codex exec was started for it.
    assert not realcodex.codex_processes(unconfigured_server.pid)


def test_mock_provider_without_login_is_serving(server):
    assert _grpc_health(server, SERVICE) == health_pb2.HealthCheckResponse.SERVING
    health = server.stub().Health(pb.HealthRequest(), timeout=CALL_TIMEOUT_S)
    assert health.ready and health.codex.custom_provider and not health.codex.logged_in


def test_health_names_the_real_codex_version_as_tested(server, real_codex):
    """Run by `make test-codex` against every listed version: each must be
    one the server calls tested, with no warning."""
    health = server.stub().Health(pb.HealthRequest(), timeout=CALL_TIMEOUT_S)
    assert health.codex_version == realcodex.package_version(real_codex)
    assert health.codex_version_tested and health.codex_version in health.codex_tested_versions
    assert health.problem == ""
