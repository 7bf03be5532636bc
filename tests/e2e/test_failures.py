"""Upstream failures reach the caller as the right status and a message a
person can act on. The detail must come from codex's own records: the
stand-in's final chat message after a failed tool call is deliberately vague.
"""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from .calls import generate

pytestmark = pytest.mark.realcodex


def _fail(server, directive: str) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        generate(server.stub(), prompt=f"a red kite {directive}", count=1)
    # Shown with -s / on failure: the exact wording a person would read.
    print(f"{directive}: {caught.value.code().name}: {caught.value.details()}")
    return caught.value


def _reason(error: grpc.RpcError) -> str:
    status = rpc_status.from_call(error)
    for detail in status.details if status else []:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info.reason
    return ""


def _stored(server) -> set:
    return (
        {p for p in server.output_dir.rglob("*") if p.is_file()}
        if server.output_dir.exists()
        else set()
    )


def test_response_failed_is_unavailable_with_upstream_message(server, fresh):
    error = _fail(server, "[[upstream: fail_response]]")
    assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
    # codex: "stream disconnected before completion: <response.error.message>"
    assert "response.failed as requested" in error.details()
    assert [r["answer"] for r in fresh.records.all("responses")] == ["failed"]


def test_images_api_403_names_the_refusal(server, fresh):
    error = _fail(server, "[[upstream: images_status=403]]")
    # Retrying will not help, so not UNAVAILABLE; not the caller's input either.
    assert error.code() in (
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.INTERNAL,
    ), error.details()
    # codex exits 0 here; the detail is only in its stderr and rollout.
    assert "403" in error.details(), error.details()
    assert "images refused" in error.details(), error.details()
    assert [r["answer"] for r in fresh.records.all("images.generations")] == ["http 403"]


def test_images_api_429_quota_is_resource_exhausted_with_reset_time(server, fresh):
    error = _fail(server, "[[upstream: images_status=429]]")
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
    text = error.details().lower()
    assert "quota" in text or "usage limit" in text or "usage_limit_reached" in text, (
        error.details()
    )
    assert "reset" in text, error.details()
    assert _reason(error) == "QUOTA_EXHAUSTED"


def test_images_api_safety_refusal_is_moderation_blocked_naming_the_prompt(server, fresh):
    error = _fail(server, "[[upstream: moderation]]")
    # The caller's input was refused: INVALID_ARGUMENT, not a server fault.
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert _reason(error) == "MODERATION_BLOCKED"
    assert "rejected by the safety system" in error.details(), error.details()
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in rpc_status.from_call(error).details)
    assert [v.field for v in bad.field_violations] == ["prompt"]


def test_responses_api_429_quota_is_resource_exhausted(server, fresh):
    error = _fail(server, "[[upstream: responses_status=429]]")
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
    assert "usage limit" in error.details().lower(), error.details()


def test_turn_without_tool_call_says_no_image_and_quotes_the_model(server, fresh):
    before = _stored(server)
    error = _fail(server, "[[upstream: no_tool]]")
    assert error.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.FAILED_PRECONDITION), (
        error.details()
    )
    assert "did not call the tool" in error.details(), error.details()
    assert "image" in error.details().lower()
    assert not fresh.records.all("images.generations") and not fresh.records.all("images.edits")
    assert _stored(server) == before
