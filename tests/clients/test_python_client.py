"""The Python client library against a live server."""

from __future__ import annotations

import hashlib
import threading

import grpc
import pytest
from codex_image_client import Client, ClientError, ImageReady, Progress, Summary

from .conftest import API_KEY, assert_runs_gone, wait_for_runs


@pytest.fixture
def client(server):
    with Client(server.grpc_target, api_key=API_KEY, timeout=20) as c:
        yield c


def test_health_and_capabilities(client):
    assert client.health().ready
    caps = client.capabilities()
    assert caps.max_images == 4 and caps.auth_required


def test_generate_events_and_download(client, ref_png, tmp_path):
    seen = []
    result = client.generate(
        "a red fox",
        count=2,
        size="2K",
        aspect="16:9",
        references=[ref_png],
        request_id="py-gen-1",
        timeout=60,
    ).wait(on_event=seen.append)
    assert {type(e) for e in seen} == {Progress, ImageReady, Summary}
    assert isinstance(seen[-1], Summary) and seen[-1].summary.request_id == "py-gen-1"
    assert sorted(i.index for i in result.images) == [0, 1]
    assert result.summary.resolved_size == "2048x1152"
    for image in result.images:
        path = client.download(image.id, tmp_path / f"{image.index}.png")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == image.sha256
        assert client.get_image(image.id).id == image.id
    assert not list(tmp_path.glob("*.part"))


def test_invalid_request_carries_reason_and_each_field(client):
    with pytest.raises(ClientError) as info:
        list(client.generate("", count=9, size="banana"))
    err = info.value
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert err.domain == "codex-image-server" and err.reason
    assert {(v.field, v.reason) for v in err.violations} >= {
        ("prompt", "MISSING_PROMPT"),
        ("count", "INVALID_COUNT"),
        ("size", "INVALID_SIZE"),
    }


def test_missing_api_key_is_unauthenticated(server):
    with Client(server.grpc_target, timeout=10) as anonymous:
        with pytest.raises(ClientError) as info:
            anonymous.capabilities()
    assert info.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert info.value.reason == "UNAUTHORIZED"


def test_unknown_image_is_not_found(client, tmp_path):
    with pytest.raises(ClientError) as info:
        client.download("img_" + "0" * 32, tmp_path / "x.png")
    assert info.value.code == grpc.StatusCode.NOT_FOUND
    assert not (tmp_path / "x.png").exists()


def test_cancel_kills_the_codex_runs(server, client):
    before = len(server.fake_runs())
    generation = client.generate("slow fox [[fake delay=30]]", count=3)
    started = threading.Event()
    errors = []

    def consume():
        try:
            for event in generation:
                if isinstance(event, Progress) and event.stage == "CANDIDATE_STARTED":
                    started.set()
        except ClientError as exc:
            errors.append(exc)

    worker = threading.Thread(target=consume)
    worker.start()
    assert started.wait(15)
    wait_for_runs(server, before + 3)
    generation.cancel()
    worker.join(15)
    assert not worker.is_alive()
    assert errors and errors[0].code == grpc.StatusCode.CANCELLED
    assert_runs_gone(server)


def test_deadline_ends_the_call_and_its_runs(server, client):
    with pytest.raises(ClientError) as info:
        client.generate("slow fox [[fake delay=30]]", count=2, timeout=1.5).wait()
    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert_runs_gone(server)
