"""The nemesis: faults at moments drawn from the run's seed, each by pid
(never by a program name), each healed by the cluster's own supervisor
except a SIGSTOP, which it ends itself once the health check has noticed,
and a damaged cached copy (bit rot: one byte of a replica's local copy of
an acknowledged image flipped in place), which the replica must notice by
its sha256 and fetch again."""

from __future__ import annotations

import collections
import os
import random
import signal
import threading
import time
from pathlib import Path

KINDS = (
    "kill_replica",
    "kill_postgres",
    "restart_postgres",
    "stop_start_objectstore",
    "stop_replica",
    "damage_cached_copy",
)


def postmaster_pid(cluster) -> int:
    return int((Path(cluster.postgres.data) / "postmaster.pid").read_text().split()[0])


class Nemesis:
    def __init__(
        self,
        cluster,
        rng: random.Random,
        gap_s: tuple[float, float],
        hang_s: float,
        limit: int,
        live_images=list,
        cache_dir=None,
    ):
        self._cluster = cluster
        self._live_images = live_images  # () -> acknowledged image ids not deleted
        self._cache_dir = cache_dir  # replica -> where it keeps its copies of objects
        self._rng = rng
        self._gap = gap_s
        self._hang_s = hang_s  # longer than HAProxy's health check needs to mark a replica down
        # Then it rests: faults faster than the supervisor's backoff recovers
        # from would keep the cluster down, and the run would prove nothing.
        self._limit = limit
        self.injected: collections.Counter = collections.Counter()
        self.stopped: set[int] = set()
        self.damaged: list[tuple[str, str]] = []  # (replica, image id) of each damaged copy
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="nemesis", daemon=True)

    def start(self) -> Nemesis:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def total(self) -> int:
        return sum(self.injected.values())

    def _loop(self) -> None:
        while self.total < self._limit and not self._stop.wait(self._rng.uniform(*self._gap)):
            kind = self._rng.choice(KINDS)
            try:
                getattr(self, kind)()
            except (OSError, ValueError, AttributeError):
                continue  # its target was being restarted: no fault this time
            self.injected[kind] += 1

    def _replica(self):
        return self._rng.choice(self._cluster.replicas)

    def kill_replica(self) -> None:
        os.kill(self._replica().proc.pid, signal.SIGKILL)

    def kill_postgres(self) -> None:
        os.kill(postmaster_pid(self._cluster), signal.SIGKILL)

    def restart_postgres(self) -> None:
        os.kill(
            postmaster_pid(self._cluster), signal.SIGINT
        )  # a fast shutdown; the supervisor starts it

    def stop_start_objectstore(self) -> None:
        os.kill(self._cluster.objects.proc.pid, signal.SIGTERM)  # stopped; the supervisor starts it

    def stop_replica(self) -> None:
        """A hung replica, not a dead one: SIGSTOP past the health check, then SIGCONT."""
        pid = self._replica().proc.pid
        os.kill(pid, signal.SIGSTOP)
        self.stopped.add(pid)
        self._stop.wait(self._hang_s)
        self.resume(pid)

    def damage_cached_copy(self) -> None:
        """One byte flipped, size kept, in a replica's copy of a live image."""
        images = self._live_images()
        if not images or self._cache_dir is None:
            raise ValueError("nothing cached to damage yet")
        image_id = self._rng.choice(images)
        replicas = list(self._cluster.replicas)
        self._rng.shuffle(replicas)
        for replica in replicas:
            for path in self._cache_dir(replica).glob(f"{image_id}.*"):
                # In place, never truncated: a read meanwhile sees the whole file, one byte off.
                with open(path, "r+b") as f:
                    f.seek(self._rng.randrange(path.stat().st_size))
                    byte = f.read(1)
                    f.seek(-1, 1)
                    f.write(bytes([byte[0] ^ 0xFF]))
                self.damaged.append((replica.name, image_id))
                return
        raise ValueError(f"no replica has {image_id} cached")

    def resume(self, pid: int) -> None:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        self.stopped.discard(pid)

    def heal(self) -> None:
        for pid in list(self.stopped):
            self.resume(pid)


def wait_healed(cluster, timeout: float) -> list[str]:
    """Every member running and every replica UP in HAProxy; what is not, named."""
    deadline = time.monotonic() + timeout
    while True:
        bad = [
            name
            for name, member in cluster.members()
            if member.proc is None or member.proc.poll() is not None
        ]
        try:
            states = cluster.balancer.server_states()
        except OSError:
            states = {}
        bad += [f"{name} {state}" for name, state in states.items() if state != "UP"] or (
            [] if states else ["haproxy stats"]
        )
        if not bad or time.monotonic() > deadline:
            return bad
        time.sleep(0.25)
