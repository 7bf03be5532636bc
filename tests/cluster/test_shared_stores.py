"""Three replicas on one PostgreSQL and one object store: any replica answers
for any image; a down store is a clear UNAVAILABLE with nothing half-written;
a restarted PostgreSQL is picked up again without restarting a replica."""

from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.request

import grpc
import pytest
from codeximage.v1 import image_service_pb2 as pb, image_service_pb2_grpc as pbg

from tests.support import procs

RECONNECT_S = 15.0


def stub_of(replica, channels):
    channel = grpc.insecure_channel(
        replica.grpc_target, options=[("grpc.max_receive_message_length", 64 << 20)]
    )
    channels.append(channel)
    return pbg.ImageServiceStub(channel)


@pytest.fixture
def stubs(cluster):
    channels = []
    yield [stub_of(r, channels) for r in cluster.replicas]
    for channel in channels:
        channel.close()


def generate(stub, prompt):
    images, error = [], None
    try:
        for event in stub.Generate(pb.GenerateRequest(prompt=prompt), timeout=60):
            if event.WhichOneof("event") == "image":
                images.append(event.image)
    except grpc.RpcError as exc:
        error = exc
    return images, error


def file_bytes(stub, image_id):
    return b"".join(
        c.data for c in stub.GetImageFile(pb.GetImageFileRequest(image_id=image_id), timeout=30)
    )


def test_an_image_made_through_a_is_listed_and_fetched_through_b_and_c(cluster, stubs):
    a, b, c = stubs
    images, error = generate(a, "shared [[fake delay=0.1 noise=1 size=512x512]]")
    assert error is None and len(images) == 1
    image = images[0]
    for other in (b, c):
        listed = other.ListImages(
            pb.ListImagesRequest(request_id=image.request_id), timeout=10
        ).images
        assert [i.id for i in listed] == [image.id]
        data = file_bytes(other, image.id)
        assert hashlib.sha256(data).hexdigest() == image.sha256 and len(data) == image.byte_size
    # The /v1 file route of a third replica streams it too.
    with urllib.request.urlopen(
        f"{cluster.replicas[2].http_base}/v1/images/{image.id}/file", timeout=30
    ) as resp:
        assert hashlib.sha256(resp.read()).hexdigest() == image.sha256
    # Deleted through C: gone for A, in the index and in the bucket.
    c.DeleteImage(pb.DeleteImageRequest(image_id=image.id), timeout=10)
    with pytest.raises(grpc.RpcError) as err:
        a.GetImage(pb.GetImageRequest(image_id=image.id), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert not list(cluster.objects.blobs.rglob(f"{image.id}*"))


def damage(path):
    """Bit rot that keeps the size: one byte flipped in place."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_damaged_cached_copy_is_fetched_again_not_served(cluster, stubs):
    a, b, _ = stubs
    images, error = generate(a, "rot [[fake delay=0.1 noise=1 size=512x512]]")
    assert error is None and len(images) == 1
    image = images[0]
    url = f"{cluster.replicas[1].http_base}/v1/images/{image.id}/file"
    assert hashlib.sha256(file_bytes(b, image.id)).hexdigest() == image.sha256  # B caches it now
    fetches = [
        (1, lambda: file_bytes(b, image.id)),
        (1, lambda: urllib.request.urlopen(url, timeout=30).read()),
        (0, lambda: file_bytes(a, image.id)),
    ]  # gRPC and the file route of B; A, which made it
    for replica, fetch in fetches:
        (cached,) = cluster.replicas[replica].directory.rglob(f"object-cache/{image.id}*")
        damage(cached)
        assert hashlib.sha256(fetch()).hexdigest() == image.sha256
    logged = [
        json.loads(line)
        for r in cluster.replicas[:2]
        for line in r.log_path.read_text().splitlines()
        if line.startswith("{")
    ]
    assert sum(1 for e in logged if e.get("event") == "store.cached_copy_damaged") >= 3


def test_object_store_down_is_unavailable_and_leaves_no_record(cluster, stubs):
    a, b, _ = stubs
    before = len(b.ListImages(pb.ListImagesRequest(page_size=1000), timeout=10).images)
    cluster.objects.stop()
    try:
        images, error = generate(a, "no store [[fake delay=0.1]]")
        assert error is not None and error.code() == grpc.StatusCode.UNAVAILABLE, error
        assert "object store" in error.details()
        assert not images
    finally:
        cluster.objects.start()
    assert len(b.ListImages(pb.ListImagesRequest(page_size=1000), timeout=10).images) == before
    images, error = generate(a, "store back [[fake delay=0.1]]")
    assert error is None and images


def test_postgres_restart_is_picked_up_without_restarting_replicas(cluster, stubs):
    pids = [r.pid for r in cluster.replicas]
    cluster.postgres.restart()
    deadline = time.monotonic() + RECONNECT_S
    for stub in stubs:
        while True:
            try:
                stub.ListImages(pb.ListImagesRequest(page_size=1), timeout=5)
                break
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
                assert time.monotonic() < deadline, "a replica did not reconnect"
                time.sleep(0.2)
    images, error = generate(stubs[1], "after restart [[fake delay=0.1]]")
    assert error is None and images
    assert [r.pid for r in cluster.replicas] == pids and all(procs.running(p) for p in pids)
