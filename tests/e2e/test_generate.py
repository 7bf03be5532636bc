"""Text to image and original references, real codex end to end."""

from __future__ import annotations

import io
import random

import pytest
from codeximage.v1 import image_service_pb2 as pb
from PIL import Image

from .calls import dimensions, generate, image_bytes, sha256

pytestmark = pytest.mark.realcodex


def _threads_seen(standin) -> set[str]:
    # codex sends its thread id with every /responses request.
    return {r["headers"].get("thread-id") for r in standin.records.all("responses")}


@pytest.mark.parametrize("count", [1, 4])
def test_text_to_image_stores_exactly_what_upstream_returned(server, fresh, count):
    stub = server.stub()
    images, _, summary = generate(stub, prompt="a lighthouse at dusk", count=count)

    returned = {img["sha256"]: img for img in fresh.images_returned()}
    assert len(fresh.records.all("images.generations")) == count
    assert len(images) == count
    assert len({img.id for img in images}) == count
    assert summary is not None and sorted(summary.image_ids) == sorted(img.id for img in images)
    for img in images:
        data = image_bytes(stub, img.id)
        # Byte for byte what the stand-in handed codex: no re-encoding on the way.
        assert sha256(data) == img.sha256
        assert img.sha256 in returned, "stored image is not one the upstream returned"
        assert (img.width, img.height) == dimensions(data) == returned[img.sha256]["dimensions"]
    assert len({img.sha256 for img in images}) == count

    # Each candidate came from its own codex thread, and those threads are
    # the ones that really talked to the upstream.
    threads = {img.thread_id for img in images}
    assert len(threads) == count and "" not in threads
    assert threads == _threads_seen(fresh)


def _noisy(width: int, height: int, seed: int) -> Image.Image:
    # Coarse noise scaled up: a real photo-like size without a 20 MB PNG.
    rnd = random.Random(seed)
    small = (width // 100, height // 100)
    pixels = bytes(rnd.getrandbits(8) for _ in range(small[0] * small[1] * 3))
    return Image.frombytes("RGB", small, pixels).resize((width, height), Image.BILINEAR)


def _encoded(img: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **options)
    return out.getvalue()


def test_original_references_reach_images_edits_byte_identical(server, fresh):
    png = _encoded(_noisy(6000, 4000, 1), "PNG")
    jpeg = _encoded(_noisy(3000, 2000, 2), "JPEG", quality=90)
    stub = server.stub()
    images, _, _ = generate(
        stub,
        prompt="blend these two into one poster",
        count=1,
        references=[
            pb.Reference(image=png, mime_type="image/png", label="background"),
            pb.Reference(image=jpeg, mime_type="image/jpeg", label="subject"),
        ],
    )

    edits = fresh.records.all("images.edits")
    assert len(edits) == 1, [r["kind"] for r in fresh.records.all()]
    arrived = edits[0]["references"]
    assert [r["sha256"] for r in arrived] == [sha256(png), sha256(jpeg)]
    assert [r["dimensions"] for r in arrived] == [(6000, 4000), (3000, 2000)]
    assert [r["mime"] for r in arrived] == ["image/png", "image/jpeg"]
    # ...and the edit's result is what got stored.
    assert len(images) == 1
    assert images[0].sha256 == edits[0]["returned"][0]["sha256"]
    assert sha256(image_bytes(stub, images[0].id)) == images[0].sha256
