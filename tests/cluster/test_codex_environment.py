"""In the cluster each replica holds the object store's keys and the
database URL; the codex it runs (and the shell codex starts) holds none of
them. Read from /proc/PID/environ of live runs, found by the run ids each
replica recorded in its state directory."""

from __future__ import annotations

import threading

import grpc
from codex_image_cluster.objectstore import ACCESS_KEY, SECRET_KEY
from codeximage.v1 import image_service_pb2 as pb

from tests.support import procs


def _drain(call):
    try:
        for _ in call:
            pass
    except grpc.RpcError:
        pass


def test_codex_in_the_cluster_sees_no_store_credentials(cluster, stub):
    calls = [
        stub.Generate(
            pb.GenerateRequest(prompt="x [[fake delay=60 shell=60]]", request_id=f"env{i}")
        )
        for i in range(3)
    ]
    threads = [threading.Thread(target=_drain, args=(c,), daemon=True) for c in calls]
    for t in threads:
        t.start()
    try:

        def live():
            return [
                pid for r in cluster.replicas for pid in procs.codex_run_pids(r.directory / "state")
            ]

        # Each run: the codex and its shell.
        assert procs.wait_until(lambda: len(live()) >= 6, timeout=30), live()
        secrets = {SECRET_KEY, cluster.postgres.url}
        for replica in cluster.replicas:
            server_env = procs.environ_of(replica.pid)
            assert server_env["AWS_SECRET_ACCESS_KEY"] == SECRET_KEY  # the replica has them ...
            assert server_env["CODEX_IMAGE_SERVER_DATABASE_URL"] == cluster.postgres.url
        for pid in live():
            env = procs.environ_of(pid)
            assert env and "CODEX_HOME" in env, pid
            leaked = sorted(
                k
                for k, v in env.items()
                if k.startswith("AWS_")
                or v in secrets
                or SECRET_KEY in v
                or v == ACCESS_KEY
                or (k.startswith("CODEX_IMAGE_SERVER_") and k != procs.RUN_ID_ENV)
            )
            assert leaked == [], (pid, leaked)  # ... codex does not
    finally:
        for c in calls:
            c.cancel()
        for t in threads:
            t.join(10)
