"""The whole cluster: PostgreSQL, the object store, N replicas, HAProxy.

    with Cluster(tmp_path, replicas=3, codex_bin=fake) as c:
        stub over c.balancer.target, HTTP at c.balancer.http_base

Starts in dependency order and stops in reverse, whatever failed."""

from __future__ import annotations

import contextlib
import ipaddress
from pathlib import Path

from .balancer import Balancer
from .objectstore import ACCESS_KEY, SECRET_KEY, ObjectStore
from .postgres import Postgres
from .replica import Replica
from .supervisor import Supervisor


def shared_stores_supported() -> bool:
    """Whether this server build takes --database-url/--object-store yet."""
    from codex_image_server import settings  # noqa: PLC0415 - only to check the flags

    names = {option.name for option in settings.OPTIONS}
    return {"database_url", "object_store"} <= names


class Cluster:
    def __init__(
        self,
        directory: Path,
        *,
        replicas: int = 3,
        codex_bin: str = "",
        codex_home: Path | None = None,
        env: dict | None = None,
        args: list[str] | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        check_ms: int = 500,
        with_stores: bool = True,
    ):
        self.directory = Path(directory)
        self.with_stores = with_stores
        self.postgres = Postgres() if with_stores else None
        self.objects = ObjectStore(self.directory / "s3") if with_stores else None
        self.replicas = [
            Replica(
                f"r{i + 1}",
                self.directory / f"r{i + 1}",
                codex_bin=codex_bin,
                codex_home=codex_home or self.directory / f"r{i + 1}" / "codex-home",
                env=env,
                args=args,
            )
            for i in range(replicas)
        ]
        # Its backends are filled in once the replicas have their ports.
        self.balancer = Balancer(
            self.directory / "haproxy", [], port=port, host=host, check_ms=check_ms
        )
        self.supervisor: Supervisor | None = None

    def stores(self) -> tuple[Postgres, ObjectStore]:
        """PostgreSQL and the object store, which only a cluster made `with_stores` has."""
        if self.postgres is None or self.objects is None:
            raise RuntimeError("this cluster runs without shared stores")
        return self.postgres, self.objects

    def store_env(self) -> dict:
        """What every replica is told about the shared stores."""
        if not self.with_stores or not shared_stores_supported():
            return {}
        postgres, objects = self.stores()
        return {
            "CODEX_IMAGE_SERVER_DATABASE_URL": postgres.url,
            "CODEX_IMAGE_SERVER_OBJECT_STORE": objects.url,
            "CODEX_IMAGE_SERVER_S3_ENDPOINT": objects.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def host_env(self) -> dict:
        """The balancer's name, when it has one, is a Host the replicas answer
        (they answer IP literals and localhost anyway)."""
        host = self.balancer.host
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if host != "localhost":
                return {"CODEX_IMAGE_SERVER_ALLOWED_HOSTS": host}
        return {}

    def start(self) -> Cluster:
        try:
            if self.with_stores:
                postgres, objects = self.stores()
                postgres.start()
                objects.start()
            for replica in self.replicas:
                replica.extra_env = {**self.store_env(), **self.host_env(), **replica.extra_env}
                replica.start()
            self.balancer.replicas = [(r.name, r.grpc_port, r.http_port) for r in self.replicas]
            self.balancer.start()
        except BaseException:
            self.stop()
            raise
        return self

    def members(self) -> list[tuple[str, object]]:
        """Every process the cluster started, by the name its restarts are logged under."""
        stores = (
            [("postgres", self.postgres), ("objectstore", self.objects)] if self.with_stores else []
        )
        return [*stores, *((r.name, r) for r in self.replicas), ("haproxy", self.balancer)]

    def supervise(self, emit=None) -> Supervisor:
        """Restart any member that dies from now on (see supervisor.py)."""
        self.supervisor = Supervisor(self.members(), emit=emit).start()
        return self.supervisor

    def store_pids(self) -> list[int]:
        """PostgreSQL's and the object store's processes (none without stores)."""
        if not self.with_stores:
            return []
        return [store.proc.pid for store in self.stores() if store.proc]

    def stop(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stop()  # nothing it would restart is stopped under it
            self.supervisor = None
        steps = [self.balancer.stop, *(r.stop for r in self.replicas)]
        if self.with_stores:
            postgres, objects = self.stores()
            steps += [objects.stop, postgres.stop]
        for step in steps:
            with contextlib.suppress(Exception):
                step()

    def __enter__(self) -> Cluster:
        return self.start()

    def remove(self) -> None:
        """Stop, and delete what lives outside `directory` (PostgreSQL's data)."""
        self.stop()
        if self.postgres:
            self.postgres.remove()

    def __exit__(self, *exc) -> None:
        self.remove()
