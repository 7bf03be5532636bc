"""Slots and the bounded queue: a full queue answers RESOURCE_EXHAUSTED at
once, and Health and capabilities never starve behind generations."""

from __future__ import annotations

import grpc
import pytest
from codeximage.v1 import image_service_pb2 as pb
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support import procs
from tests.support.grpc_helpers import error_details
from tests.support.server_proc import start_server


def slow(stub, rid, count=1):
    return stub.Generate(
        pb.GenerateRequest(prompt="x [[fake delay=60]]", count=count, request_id=rid)
    )


def test_full_queue_is_refused_at_once_and_health_stays_responsive(tmp_path):
    with start_server(tmp_path, args=["--max-concurrent", "2", "--queue-limit", "2"]) as srv:
        stub = srv.stub()
        calls = [slow(stub, "run-a", count=2)]
        assert procs.wait_until(lambda: len(srv.runs_of("run-a")) == 2, timeout=10)
        for rid in ("wait-1", "wait-2"):
            call = slow(stub, rid)
            assert next(iter(call)).progress.stage == pb.Progress.STAGE_QUEUED
            calls.append(call)
        with pytest.raises(grpc.RpcError) as exc:
            list(slow(stub, "refused"))
        info, _ = error_details(exc.value)
        assert (
            exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and info.reason == "QUEUE_FULL"
        )
        # Worker threads are busy with streams; these must still answer quickly.
        health = stub.Health(pb.HealthRequest(), timeout=5)
        assert (health.slots.in_use, health.slots.free, health.slots.queued) == (2, 0, 2)
        assert stub.GetCapabilities(pb.GetCapabilitiesRequest(), timeout=5).max_images == 4
        checked = health_pb2_grpc.HealthStub(srv.channel()).Check(
            health_pb2.HealthCheckRequest(service="codeximage.v1.ImageService"), timeout=5
        )
        assert checked.status == health_pb2.HealthCheckResponse.SERVING
        for call in calls:
            call.cancel()
        assert procs.wait_until(lambda: procs.all_gone(srv.fake_runs()), timeout=5)
        assert procs.wait_until(
            lambda: stub.Health(pb.HealthRequest()).slots.in_use == 0, timeout=5
        )


def test_capabilities_match_the_plugin_contract(stub):
    caps = stub.GetCapabilities(pb.GetCapabilitiesRequest())
    assert (
        caps.model == "gpt-image-2"
        and caps.max_images == 4
        and caps.references.mode == "original_image"
    )
    assert list(caps.output_formats) == ["png", "jpeg", "webp"]
    assert list(caps.qualities) == ["auto", "high", "medium", "low"]
    assert {"auto", "1K", "2K", "4K", "3840x2160", "2880x2880"} <= set(caps.size_options)
    assert "16:9" in caps.ratio_options and "21:9" in caps.ratio_options
    sc = caps.size_constraints
    assert (
        sc.custom_size,
        sc.max_edge,
        sc.max_pixels,
        sc.min_pixels,
        sc.multiple_of,
        sc.max_ratio,
    ) == (True, 3840, 8294400, 655360, 16, "3:1")
    hr = caps.high_resolution_presets
    assert (hr.landscape, hr.portrait, hr.square) == ("3840x2160", "2160x3840", "2880x2880")
    assert (
        caps.references.max_images == 16
        and not caps.auth_required
        and caps.generation_timeout_ms > 0
    )
