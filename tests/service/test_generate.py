"""Generate through real gRPC with the fake codex: images, progress, the three
image layouts, format conversion, and each way codex can fail."""

from __future__ import annotations

import hashlib
import io

import grpc
import pytest
from codeximage.v1 import image_service_pb2 as pb
from PIL import Image

from tests.support import procs
from tests.support.grpc_helpers import error_details, kinds


def run(stub, timeout=60, **fields):
    return list(stub.Generate(pb.GenerateRequest(**fields), timeout=timeout))


def images(responses):
    return [r.image for r in responses if r.WhichOneof("event") == "image"]


def test_one_candidate_is_stored_with_real_metadata(stub, server):
    responses = run(stub, prompt="a red fox [[fake size=320x192]]", request_id="one-fox")
    assert kinds(responses)[-1] == "summary"
    (img,) = images(responses)
    assert (img.width, img.height, img.mime_type) == (320, 192, "image/png")
    assert img.request_id == "one-fox" and img.index == 0 and img.label == "Candidate 1"
    assert img.file_path == f"/v1/images/{img.id}/file"
    assert img.thread_id and img.revised_prompt
    data = (server.output_dir / f"{img.id}.png").read_bytes()
    assert hashlib.sha256(data).hexdigest() == img.sha256 and len(data) == img.byte_size
    summary = responses[-1].summary
    assert summary.status == "completed" and list(summary.image_ids) == [img.id]
    assert summary.model == "gpt-image-2" and summary.backend == "codex-exec"


def test_progress_comes_before_the_image(stub):
    responses = run(stub, prompt="x [[fake delay=0.3]]")
    stages = [r.progress.stage for r in responses if r.WhichOneof("event") == "progress"]
    phases = [r.progress.phase for r in responses if r.WhichOneof("event") == "progress"]
    assert stages[0] == pb.Progress.STAGE_CANDIDATE_STARTED
    assert (
        pb.Progress.STAGE_CODEX_PHASE in stages and pb.Progress.STAGE_CANDIDATE_FINISHED in stages
    )
    assert {"thread.started", "turn.started"} <= set(phases)
    # Codex is stopped as soon as its image is final (finish early), so its
    # closing turn may never be reported.
    assert "image.final" in phases or "turn.completed" in phases
    first_image = kinds(responses).index("image")
    assert all(k == "progress" for k in kinds(responses)[:first_image])


def test_four_candidates_run_at_the_same_time(stub, server):
    call = stub.Generate(
        pb.GenerateRequest(prompt="x [[fake delay=3]]", count=4, request_id="four-at-once"),
        timeout=60,
    )
    responses = iter(call)
    # All four codex processes are alive together before any of them finishes.
    assert procs.wait_until(lambda: len(server.runs_of("four-at-once")) == 4, timeout=10)
    runs = server.runs_of("four-at-once")
    assert all(procs.running(r["pid"]) for r in runs)
    assert len({r["pgid"] for r in runs}) == 4, "each candidate leads its own process group"
    assert all(r["pgid"] == r["pid"] == r["sid"] for r in runs), (
        "each candidate is a session leader"
    )
    rest = list(responses)
    imgs = images(rest)
    assert sorted(i.index for i in imgs) == [0, 1, 2, 3]
    assert len({i.id for i in imgs}) == 4 and len({i.thread_id for i in imgs}) == 4
    assert len({i.sha256 for i in imgs}) == 4, "candidates differ"
    assert procs.wait_until(lambda: procs.all_gone(runs), timeout=5)


@pytest.mark.parametrize(
    "layout",
    [
        "generated",
        "rollout-saved",
        "rollout-result",
        "legacy-call",
        "legacy-ig",
        "legacy-end",
        "app-server",
    ],
)
def test_every_image_layout_is_found(stub, layout):
    (img,) = images(run(stub, prompt=f"x [[fake layout={layout} size=272x160]]"))
    assert (img.width, img.height) == (272, 160)


def test_an_image_in_an_unknown_shape_is_codex_unsupported_naming_version_and_range(stub):
    err, info = failure(stub, "x [[fake layout=unknown]]")
    assert (
        err.code() == grpc.StatusCode.FAILED_PRECONDITION and info.reason == "CODEX_UNSUPPORTED"
    ), err.details()
    # The fake's rollout says cli_version 0.169.0; the range is the Makefile's list.
    assert "codex 0.169.0" in err.details() and "0.169.0-0.171.0" in err.details(), err.details()
    assert "image_gen.generation.v2" in err.details()
    assert info.metadata["codex_version"] == "0.169.0"
    assert info.metadata["tested_versions"] == "0.169.0, 0.170.0, 0.171.0"


def test_a_safety_refusal_is_invalid_argument_moderation_blocked_naming_the_prompt(stub):
    err, info = failure(stub, "x [[fake mode=moderation]]")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and info.reason == "MODERATION_BLOCKED", (
        err.details()
    )
    assert "safety system" in err.details()
    _, violations = error_details(err)
    assert [(field, reason) for field, reason, _ in violations] == [
        ("prompt", "MODERATION_BLOCKED")
    ]


@pytest.mark.parametrize(
    "fmt,mime,pil",
    [
        ("jpeg", "image/jpeg", "JPEG"),
        ("jpg", "image/jpeg", "JPEG"),
        ("webp", "image/webp", "WEBP"),
        ("png", "image/png", "PNG"),
    ],
)
def test_png_from_codex_is_converted_to_the_asked_format(stub, server, fmt, mime, pil):
    (img,) = images(run(stub, prompt="x [[fake size=160x96]]", output_format=fmt))
    assert img.mime_type == mime
    ext = {"image/jpeg": "jpg", "image/webp": "webp", "image/png": "png"}[mime]
    with Image.open(io.BytesIO((server.output_dir / f"{img.id}.{ext}").read_bytes())) as decoded:
        assert decoded.format == pil and decoded.size == (160, 96)


def failure(stub, prompt, **fields):
    with pytest.raises(grpc.RpcError) as exc:
        run(stub, prompt=prompt, **fields)
    info, _ = error_details(exc.value)
    return exc.value, info


def test_exit_zero_without_an_image_carries_codex_message(stub):
    err, info = failure(stub, "x [[fake mode=noimage]]")
    assert err.code() == grpc.StatusCode.INTERNAL and info.reason == "CODEX_NO_IMAGE"
    assert "I can't help with creating that image." in err.details()


def test_quota_is_resource_exhausted_with_reset_time(stub):
    err, info = failure(stub, "x [[fake mode=quota]]")
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and info.reason == "QUOTA_EXHAUSTED"
    assert info.metadata["resets_at"] == "2030-01-01T00:00:00Z"
    assert "2030-01-01T00:00:00Z" in err.details()


def test_images_api_refusal_is_permission_denied(stub):
    err, info = failure(stub, "x [[fake mode=forbidden]]")
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and info.reason == "CODEX_IMAGE_FAILED"
    assert "http 403" in err.details()


def test_failed_turn_is_unavailable_with_the_reason(stub):
    err, info = failure(stub, "x [[fake mode=fail]]")
    assert err.code() == grpc.StatusCode.UNAVAILABLE and info.reason == "CODEX_EXEC_FAILED"
    assert "stream disconnected" in err.details()


def test_crash_is_internal(stub):
    err, info = failure(stub, "x [[fake mode=crash]]")
    assert err.code() == grpc.StatusCode.INTERNAL and info.reason == "CODEX_EXEC_FAILED"


def test_failed_sibling_stops_the_others(stub, server):
    # Candidate 2 fails fast; 1 and 3 would run for a minute.
    err, info = failure(
        stub,
        "x [[fake delay=60 fail_candidate=2]]",
        count=3,
        request_id="sibling-fails",
        timeout=30,
    )
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    runs = server.runs_of("sibling-fails")
    assert len(runs) == 3
    assert procs.wait_until(lambda: procs.all_gone(runs), timeout=5)
    assert not stub.ListImages(pb.ListImagesRequest(request_id="sibling-fails")).images
