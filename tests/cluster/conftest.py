"""One real cluster per module: PostgreSQL, s3proxy, three replicas running the
fake codex, HAProxy in front. `make test` installs what it needs (cluster-deps),
so nothing here is skipped: a missing piece fails the set-up loudly."""
from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

import grpc
import pytest

from codex_image_cluster.cluster import Cluster
from tests.support import procs
from tests.support.server_proc import fake_codex_launcher

CHECK_MS = 300  # HAProxy's health-check interval; a dead replica is out after 2 failures


def replica_runs(replica) -> list[dict]:
    runs = []
    for path in sorted((replica.directory / "fake-codex-pids").glob("*.json")):
        with contextlib.suppress(ValueError, OSError):
            runs.append(json.loads(path.read_text()))
    return runs


def key_secret(name: str) -> str:
    return f"secret-of-{name}"


def keys_env(directory: Path, keys: dict) -> dict:
    """One keys file every replica reads: {name: {limits}} with key_secret(name)."""
    if not keys:
        return {}
    path = directory / "keys.json"
    path.write_text(json.dumps({"keys": [
        {"name": name, "sha256": hashlib.sha256(key_secret(name).encode()).hexdigest(), **limits}
        for name, limits in keys.items()]}))
    return {"CODEX_IMAGE_SERVER_KEYS_FILE": str(path)}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, request):
    """A module may set CLUSTER_KEYS = {name: {"images_per_day": N, ...}}."""
    directory = Path(tmp_path_factory.mktemp("cluster"))
    fake = fake_codex_launcher(directory)
    c = Cluster(directory / "c", replicas=3, codex_bin=str(fake), check_ms=CHECK_MS,
                env=keys_env(directory, getattr(request.module, "CLUSTER_KEYS", {})))
    for replica in c.replicas:
        replica.codex_home.mkdir(parents=True, exist_ok=True)
        (replica.codex_home / "auth.json").write_text('{"fake": true}')
        replica.extra_env["FAKE_CODEX_PIDDIR"] = str(replica.directory / "fake-codex-pids")
    with c:
        assert procs.wait_until(lambda: all(s == "UP" for s in c.balancer.server_states().values()), 10), \
            c.balancer.server_states()
        yield c
        for replica in c.replicas:
            procs.kill_leftover_runs(replica_runs(replica))


@pytest.fixture
def stub(cluster):
    from codeximage.v1 import image_service_pb2_grpc
    with grpc.insecure_channel(cluster.balancer.target) as channel:
        yield image_service_pb2_grpc.ImageServiceStub(channel)
