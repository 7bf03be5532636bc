"""The output store through GetImage and GetImageFile: bytes equal, chunks
bounded, metadata that survives a restart, ids that cannot name a path."""

from __future__ import annotations

import hashlib

import grpc
import pytest
from codeximage.v1 import image_service_pb2 as pb

from tests.support.grpc_helpers import error_details
from tests.support.server_proc import start_server

CHUNK = 1024 * 1024


def make_image(stub, size="1200x800", noise=0, request_id="stored"):
    # A request id names one request: another request on the same server takes another id.
    responses = list(
        stub.Generate(
            pb.GenerateRequest(
                prompt=f"x [[fake size={size} noise={noise}]]",
                quality="high",
                request_id=request_id,
            ),
            timeout=60,
        )
    )
    return next(r.image for r in responses if r.WhichOneof("event") == "image")


def fetch(stub, image_id):
    chunks = list(stub.GetImageFile(pb.GetImageFileRequest(image_id=image_id), timeout=30))
    return chunks, b"".join(c.data for c in chunks)


def test_fetched_file_equals_the_stored_file(stub, server):
    img = make_image(
        stub, "1280x1024", noise=1, request_id="stored-chunks"
    )  # ~3.9 MB: several 1 MiB chunks
    chunks, data = fetch(stub, img.id)
    stored = (server.output_dir / f"{img.id}.png").read_bytes()
    assert hashlib.sha256(data).hexdigest() == hashlib.sha256(stored).hexdigest() == img.sha256
    assert len(chunks) > 1 and all(len(c.data) <= CHUNK for c in chunks)
    first = chunks[0]
    assert (
        first.content_type == "image/png"
        and first.total_size == len(stored)
        and first.sha256 == img.sha256
    )
    assert all(not c.content_type and not c.total_size for c in chunks[1:])


def test_metadata_and_files_survive_a_restart(tmp_path):
    dirs = dict(state_dir=tmp_path / "state", output_dir=tmp_path / "out")
    with start_server(tmp_path, **dirs) as srv:
        img = make_image(srv.stub())
        before = srv.stub().GetImage(pb.GetImageRequest(image_id=img.id)).image
    with start_server(tmp_path, **dirs) as srv:
        after = srv.stub().GetImage(pb.GetImageRequest(image_id=img.id)).image
        assert after == before
        assert (after.request_id, after.prompt, after.quality, after.thread_id) == (
            "stored",
            "x [[fake size=1200x800 noise=0]]",
            "high",
            img.thread_id,
        )
        assert (after.width, after.height) == (1200, 800) and after.duration_ms > 0
        _, data = fetch(srv.stub(), img.id)
        assert hashlib.sha256(data).hexdigest() == img.sha256


@pytest.mark.parametrize(
    "image_id",
    [
        "img_00000000000000000000000000000000",
        "",
        "../../etc/passwd",
        "/etc/passwd",
        "img_../../../etc/passwd",
        "img_0000000000000000000000000000000/",
        "..",
        "img_%2e%2e",
        "IMG_00000000000000000000000000000000",
    ],
)
def test_unknown_or_path_like_id_is_not_found(stub, image_id):
    for call in (
        lambda: stub.GetImage(pb.GetImageRequest(image_id=image_id)),
        lambda: list(stub.GetImageFile(pb.GetImageFileRequest(image_id=image_id))),
    ):
        with pytest.raises(grpc.RpcError) as exc:
            call()
        assert exc.value.code() == grpc.StatusCode.NOT_FOUND
        info, _ = error_details(exc.value)
        assert info.reason == "NOT_FOUND"


def test_no_temp_files_are_left_in_the_store(stub, server):
    make_image(stub)
    assert not [p for p in server.output_dir.iterdir() if p.name.startswith(".")]
