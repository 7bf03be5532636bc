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
from codeximage.v1 import image_service_pb2_grpc as pbg

from tests.support import procs
from tests.support.generating import generate
from tests.support.server_proc import FAKE_CODEX_ENV, fake_codex_launcher

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
    path.write_text(
        json.dumps(
            {
                "keys": [
                    {
                        "name": name,
                        "sha256": hashlib.sha256(key_secret(name).encode()).hexdigest(),
                        **limits,
                    }
                    for name, limits in keys.items()
                ]
            }
        )
    )
    return {"CODEX_IMAGE_SERVER_KEYS_FILE": str(path)}


def account_home(replica, name: str) -> Path:
    """The replica's own CODEX_HOME for account `name` (its copy of the login)."""
    return replica.directory / f"home-{name}"


def accounts_env(replica, accounts: list[str]) -> dict:
    """["shared:2", ...] -> --account shared:2=<this replica's home> each, logged in."""
    if not accounts:
        return {}
    entries = []
    for spec in accounts:
        home = account_home(replica, spec.partition(":")[0])
        home.mkdir(parents=True, exist_ok=True)
        (home / "auth.json").write_text('{"fake": true}')
        entries.append(f"{spec}={home}")
    return {"CODEX_IMAGE_SERVER_ACCOUNTS": "\n".join(entries)}  # one a line (paths may hold commas)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, request):
    """A module may set CLUSTER_KEYS = {name: {"images_per_day": N, ...}},
    CLUSTER_ENV = {variable: value} for every replica, and CLUSTER_ACCOUNTS
    (see accounts_env)."""
    directory = Path(tmp_path_factory.mktemp("cluster"))
    fake = fake_codex_launcher(directory)
    env = {
        **keys_env(directory, getattr(request.module, "CLUSTER_KEYS", {})),
        **getattr(request.module, "CLUSTER_ENV", {}),
    }
    c = Cluster(directory / "c", replicas=3, codex_bin=str(fake), check_ms=CHECK_MS, env=env)
    for replica in c.replicas:
        replica.codex_home.mkdir(parents=True, exist_ok=True)
        (replica.codex_home / "auth.json").write_text('{"fake": true}')
        replica.extra_env["FAKE_CODEX_PIDDIR"] = str(replica.directory / "fake-codex-pids")
        replica.extra_env.update(FAKE_CODEX_ENV)
        replica.extra_env.update(
            accounts_env(replica, getattr(request.module, "CLUSTER_ACCOUNTS", []))
        )
    with c:
        assert procs.wait_until(
            lambda: all(s == "UP" for s in c.balancer.server_states().values()), 10
        ), c.balancer.server_states()
        yield c
        for replica in c.replicas:
            procs.kill_leftover_runs(replica_runs(replica))


@pytest.fixture
def stub(cluster):
    with grpc.insecure_channel(cluster.balancer.target) as channel:
        yield pbg.ImageServiceStub(channel)


def generate_on(
    replica,
    prompt: str,
    *,
    key: str = "",
    count: int = 1,
    request_id: str = "",
    timeout: float = 60,
):
    """One Generate straight to a replica (not through HAProxy): (images, error or None)."""
    metadata = [("authorization", f"Bearer {key_secret(key)}")] if key else None
    with grpc.insecure_channel(replica.grpc_target) as channel:
        return generate(
            pbg.ImageServiceStub(channel),
            prompt,
            count=count,
            request_id=request_id,
            metadata=metadata,
            timeout=timeout,
        )


def live_runs(cluster, marker: str) -> list[dict]:
    """Fake codex runs of every replica, alive now, whose request id has `marker`."""
    return [
        r
        for rep in cluster.replicas
        for r in replica_runs(rep)
        if f"/{marker}" in r["cwd"] and procs.running(r["pid"])
    ]
