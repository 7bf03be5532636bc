"""The chaos run's clients: concurrent Generate over gRPC and `/v1`, OpenAI
Images calls, history reads and deletes, each under one of two named keys,
all through the balancer. Every answer is written down (the ledger) as the
caller saw it; the checks compare the cluster with it afterwards."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import threading
import time
import urllib.error
import urllib.request

import grpc
from codeximage.v1 import image_service_pb2 as pb, image_service_pb2_grpc as pbg

KEYS = ("alpha", "beta")
PROMPT = "chaos [[fake delay=1]]"  # the fake codex: 1 s per candidate
RETRY_S = 0.5  # a caller's pause after a failed call
KEEP = 10  # a key deletes only while it has more images than this


def key_secret(name: str) -> str:
    return f"chaos-secret-of-{name}"


def metadata(key: str):
    return (("authorization", f"Bearer {key_secret(key)}"),)


@dataclasses.dataclass
class Ledger:
    generations: int = (
        0  # Generate calls made (every surface), but those refused for the key's daily limit
    )
    refused_for_limit: int = 0
    answered_ok: int = 0
    answered_error: int = 0
    reads: int = 0
    deletes: int = 0
    # request id -> key, for the gRPC and /v1 calls (their ids are ours)
    requests: dict = dataclasses.field(default_factory=dict)
    # image id -> (key, sha256) of every image a caller was given
    # (request id -> those image ids, for the calls whose ids are ours)
    acknowledged: dict = dataclasses.field(default_factory=dict)
    given: dict = dataclasses.field(default_factory=dict)
    deleted: set = dataclasses.field(default_factory=set)
    exhausted: set = dataclasses.field(default_factory=set)  # keys refused for their daily limit
    # Images a gRPC caller saw on a stream that then broke (its answer is an
    # error): acknowledged all the same (it was told their ids), not `given`.
    told_then_broken: int = 0
    # surface -> [answered with an image, calls] (the limit's refusals not counted)
    by_surface: dict = dataclasses.field(default_factory=dict)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def acked(self, key: str, images, request_id: str = "", answered: bool = True) -> None:
        with self.lock:
            for image_id, sha in images:
                self.acknowledged[image_id] = (key, sha)
            if request_id and images and answered:
                self.given[request_id] = [image_id for image_id, _ in images]
            if images and not answered:
                self.told_then_broken += len(images)

    def live(self) -> list[str]:
        """Acknowledged images not deleted, by id."""
        with self.lock:
            return sorted(i for i in self.acknowledged if i not in self.deleted)


class Workload:
    def __init__(self, grpc_target: str, http_base: str, seed: int, ledger: Ledger):
        self._channel = grpc.insecure_channel(grpc_target)
        self.stub = pbg.ImageServiceStub(self._channel)
        self._http = http_base
        self._seed = seed
        self.ledger = ledger
        self._counter = 0
        self._lock = threading.Lock()

    def close(self) -> None:
        self._channel.close()

    def _next_id(self) -> str:
        with self._lock:
            self._counter += 1
            return f"chaos{self._seed}n{self._counter}"

    def one(self, rng: random.Random) -> None:
        key = rng.choice(KEYS)
        roll = rng.random()
        if roll < 0.85 and key in self.ledger.exhausted:
            key = next((k for k in KEYS if k not in self.ledger.exhausted), key)
        if roll < 0.5:
            self._generate_grpc(key)
        elif roll < 0.7:
            self._generate_http(key)
        elif roll < 0.8:
            self._generate_openai(key)
        elif roll < 0.97:
            self._read(key, rng)
        else:
            self._delete(key, rng)

    def _count(self, ok: bool, surface: str) -> None:
        with self.ledger.lock:
            counts = self.ledger.by_surface.setdefault(surface, [0, 0])
            counts[0] += ok
            counts[1] += 1
            self.ledger.generations += 1
            if ok:
                self.ledger.answered_ok += 1
            else:
                self.ledger.answered_error += 1
        if not ok:
            time.sleep(RETRY_S)  # as a client would before trying again

    def _generate_grpc(self, key: str) -> None:
        rid = self._next_id()
        with self.ledger.lock:
            self.ledger.requests[rid] = key
        images = []
        try:
            for e in self.stub.Generate(
                pb.GenerateRequest(prompt=PROMPT, request_id=rid),
                metadata=metadata(key),
                timeout=60,
            ):
                if e.WhichOneof("event") == "image":
                    images.append((e.image.id, e.image.sha256))
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "today (UTC)" in (
                err.details() or ""
            ):
                with self.ledger.lock:
                    self.ledger.exhausted.add(key)
                    self.ledger.refused_for_limit += 1
                return
            self.ledger.acked(key, images, rid, answered=False)
            self._count(False, "gRPC")
            return
        self.ledger.acked(key, images, rid)
        self._count(bool(images), "gRPC")

    def _post(self, path: str, body: dict, key: str) -> dict | None:
        request = urllib.request.Request(
            self._http + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {key_secret(key)}",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return json.loads(answer.read())
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def _generate_http(self, key: str) -> None:
        rid = self._next_id()
        with self.ledger.lock:
            self.ledger.requests[rid] = key
        body = self._post("/v1/images/generate", {"prompt": PROMPT, "n": 1, "request_id": rid}, key)
        images = [(d["id"], d["sha256"]) for d in (body or {}).get("data", []) if d.get("id")]
        self.ledger.acked(key, images, rid)
        self._count(bool(images), "/v1")

    def _generate_openai(self, key: str) -> None:
        body = self._post(
            "/v1/images/generations", {"prompt": PROMPT, "n": 1, "response_format": "b64_json"}, key
        )
        # The OpenAI answer carries the bytes, not our ids: counted, and checked by usage.
        self._count(bool(body and body.get("data")), "OpenAI")

    def _read(self, key: str, rng: random.Random) -> None:
        with self.ledger.lock:
            self.ledger.reads += 1
            mine = [rid for rid, k in self.ledger.requests.items() if k == key]
        try:
            if mine:
                self.stub.GetRequest(
                    pb.GetRequestRequest(request_id=rng.choice(mine)),
                    metadata=metadata(key),
                    timeout=10,
                )
            else:
                self.stub.ListImages(
                    pb.ListImagesRequest(page_size=10), metadata=metadata(key), timeout=10
                )
        except grpc.RpcError:
            pass  # a read may fail while a store is down; it changes nothing

    def _delete(self, key: str, rng: random.Random) -> None:
        with self.ledger.lock:
            self.ledger.deletes += 1
            mine = sorted(
                i
                for i, (k, _) in self.ledger.acknowledged.items()
                if k == key and i not in self.ledger.deleted
            )
        if len(mine) <= KEEP:
            return
        image_id = rng.choice(mine)
        # Asked to go: whatever the answer (a lost answer may hide a done
        # delete), it is no longer an image the cluster must keep.
        with self.ledger.lock:
            self.ledger.deleted.add(image_id)
        try:
            self.stub.DeleteImage(
                pb.DeleteImageRequest(image_id=image_id), metadata=metadata(key), timeout=10
            )
        except grpc.RpcError:
            pass


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
