"""Key limits hold across replicas: the images a key made through any replica
count against its daily limit on every other (the rows are in PostgreSQL)."""
from __future__ import annotations

import grpc

from codeximage.v1 import image_service_pb2 as pb
from codeximage.v1 import image_service_pb2_grpc as pbg

from .conftest import key_secret

CLUSTER_KEYS = {"team": {"images_per_day": 3}}


def generate(replica, count: int = 1):
    with grpc.insecure_channel(replica.grpc_target) as channel:
        try:
            events = list(pbg.ImageServiceStub(channel).Generate(
                pb.GenerateRequest(prompt="limited [[fake delay=0.05]]", count=count),
                metadata=[("authorization", f"Bearer {key_secret('team')}")], timeout=60))
        except grpc.RpcError as exc:
            return None, exc
    return [e.image for e in events if e.WhichOneof("event") == "image"], None


def test_a_keys_daily_limit_counts_images_made_through_every_replica(cluster):
    r1, r2, r3 = cluster.replicas
    for replica in (r1, r2, r3):
        images, error = generate(replica)
        assert error is None and len(images) == 1, error
    for replica in (r1, r2, r3):
        images, error = generate(replica)
        assert error is not None and error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
        assert "3 of its 3 images" in error.details()
