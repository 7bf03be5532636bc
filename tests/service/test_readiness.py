"""Readiness: Health and grpc.health say whether codex can generate, and
Generate refuses with FAILED_PRECONDITION and a how-to-fix message if not."""

from __future__ import annotations

import grpc
import pytest
from codeximage.v1 import image_service_pb2 as pb
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from tests.shim.client import request
from tests.support.grpc_helpers import error_details
from tests.support.server_proc import start_server

SERVICE = "codeximage.v1.ImageService"


def service_health(srv):
    return (
        health_pb2_grpc.HealthStub(srv.channel())
        .Check(health_pb2.HealthCheckRequest(service=SERVICE))
        .status
    )


def refused(stub):
    with pytest.raises(grpc.RpcError) as exc:
        list(stub.Generate(pb.GenerateRequest(prompt="x"), timeout=30))
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    return exc.value, error_details(exc.value)[0]


def test_not_logged_in_is_not_serving_and_says_run_codex_login(tmp_path):
    with start_server(tmp_path, logged_in=False) as srv:
        health = srv.stub().Health(pb.HealthRequest())
        assert not health.ready and health.status == "unavailable"
        assert (
            health.codex.found
            and health.codex.version == "codex-cli 0.169.0"
            and not health.codex.logged_in
        )
        assert "login" in health.problem
        assert service_health(srv) == health_pb2.HealthCheckResponse.NOT_SERVING
        err, info = refused(srv.stub())
        assert info.reason == "CODEX_NOT_LOGGED_IN" and "login" in err.details()
        assert not srv.fake_runs()
        # Logging in is picked up without a restart.
        (srv.codex_home / "auth.json").write_text("{}")
        responses = list(srv.stub().Generate(pb.GenerateRequest(prompt="x"), timeout=30))
        assert responses[-1].WhichOneof("event") == "summary"


def test_a_custom_provider_counts_as_ready(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        'model_provider = "mock"\n[model_providers.mock]\nname = "mock"\n'
    )
    with start_server(tmp_path, logged_in=False, codex_home=home) as srv:
        health = srv.stub().Health(pb.HealthRequest())
        assert health.ready and health.codex.custom_provider and not health.codex.logged_in
        assert service_health(srv) == health_pb2.HealthCheckResponse.SERVING


def test_missing_codex_says_how_to_install_it(tmp_path):
    with start_server(tmp_path, codex=tmp_path / "no-such-codex") as srv:
        health = srv.stub().Health(pb.HealthRequest())
        assert not health.ready and not health.codex.found
        err, info = refused(srv.stub())
        assert info.reason == "CODEX_NOT_FOUND" and "make codex" in err.details()
        assert service_health(srv) == health_pb2.HealthCheckResponse.NOT_SERVING


def test_ready_server_reports_slots_and_version(stub):
    health = stub.Health(pb.HealthRequest())
    assert health.ready and health.status == "ok" and health.backend == "codex-exec"
    assert health.codex.version == "codex-cli 0.169.0"
    assert (health.slots.limit, health.slots.free, health.slots.in_use) == (4, 4, 0)


def test_health_names_a_tested_codex_version_and_no_warning(stub):
    health = stub.Health(pb.HealthRequest())
    assert health.codex_version == "0.169.0" and health.codex_version_tested
    assert list(health.codex_tested_versions) == ["0.169.0", "0.170.0", "0.171.0"]
    assert health.problem == ""


def test_an_untested_codex_is_ready_with_a_warning_and_the_version_on_metrics(tmp_path):
    home = tmp_path / "codex-home"
    home.mkdir()
    (home / "fake_codex.json").write_text('{"version": "codex-cli 0.172.0"}')
    with start_server(tmp_path, codex_home=home, http=True) as srv:
        health = srv.stub().Health(pb.HealthRequest())
        # Still serving: it may well work.
        assert health.ready and health.status == "ok"
        assert service_health(srv) == health_pb2.HealthCheckResponse.SERVING
        assert health.codex_version == "0.172.0" and not health.codex_version_tested
        assert health.problem.startswith(
            "warning: codex 0.172.0 is outside the tested range 0.169.0-0.171.0"
        )
        healthz = request(srv.http_base, "GET", "/healthz")
        assert healthz.status == 200
        body = healthz.json()
        assert body["codex_version"] == "0.172.0" and body["codex_version_tested"] is False
        assert "outside the tested range" in body["problem"]
        scraped = request(srv.http_base, "GET", "/metrics").body.decode()
        info = [
            (s.labels, s.value)
            for f in text_string_to_metric_families(scraped)
            for s in f.samples
            if s.name == "codex_image_codex_info"
        ]
        assert info == [({"version": "0.172.0", "tested": "false"}, 1.0)], info
        # And it generates.
        responses = list(srv.stub().Generate(pb.GenerateRequest(prompt="x"), timeout=30))
        assert responses[-1].WhichOneof("event") == "summary"
