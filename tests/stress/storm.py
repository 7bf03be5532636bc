"""The cancel storm: random cancels, deadlines, disconnects and dropped
NDJSON streams, 8 at a time, against a fake codex that starts a shell in a
session of its own (as the real codex does) and sometimes ignores SIGTERM."""
from __future__ import annotations

import json
import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
from codeximage.v1 import image_service_pb2 as pb

from tests.shim.client import abort

from .figures import Figures

CLIENT_SIDE = ("CANCELLED", "DEADLINE_EXCEEDED")  # codes the client itself causes


def _prompt(rng: random.Random, long: bool) -> str:
    delays = [0.05, 0.3, 1, 3, 30] if long else [0.05, 0.3, 1]
    parts = [f"delay={rng.choice(delays)}", f"shell={rng.choice([0.05, 0.5, 5, 60])}"]
    if rng.random() < 0.3:
        parts.append("child=1")
    if rng.random() < 0.2:
        parts.append("ignore_term=1")
    if rng.random() < 0.1:
        parts.append("mode=fail")
    return f"storm [[fake {' '.join(parts)}]]"


def _grpc_op(stub, rng: random.Random, figures: Figures, lock: threading.Lock) -> None:
    action = rng.choice(["cancel", "deadline", "complete"])
    request = pb.GenerateRequest(prompt=_prompt(rng, long=action != "complete"), count=rng.randint(1, 3))
    try:
        if action == "deadline":
            list(stub.Generate(request, timeout=rng.uniform(0.05, 1.5)))
        else:
            call = stub.Generate(request, timeout=60)
            if action == "cancel":
                threading.Timer(rng.uniform(0.0, 1.5), call.cancel).start()
            for _ in call:
                pass
        code, details = "OK", ""
    except grpc.RpcError as err:
        code, details = err.code().name, err.details() or ""
    with lock:
        if code in CLIENT_SIDE:
            figures.requests += 1
        else:
            figures.grpc_answer(code, details, f"storm {action}")


def _http_op(port: int, rng: random.Random, figures: Figures, lock: threading.Lock) -> None:
    """A plain or NDJSON Generate that the client drops mid-way (RST)."""
    body = json.dumps({"prompt": _prompt(rng, long=True), "n": rng.randint(1, 2)}).encode()
    stream = rng.random() < 0.5
    head = (f"POST /v1/images/generate{'?stream=1' if stream else ''} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(head + body)
    if stream:
        try:
            sock.recv(4096)  # the first NDJSON line (or the error), then drop the stream
        except socket.timeout:
            with lock:
                figures.answers_5xx += 1
                figures._example("an NDJSON stream sent nothing in 30 s")
    time.sleep(rng.uniform(0.0, 1.0))
    abort(sock)
    with lock:
        figures.requests += 1


def cancel_storm(srv, operations: int, figures: Figures, seed: int = 10) -> None:
    rng = random.Random(seed)
    lock = threading.Lock()
    channel = srv.channel()
    stub = srv.stub(channel)
    seeds = [rng.random() for _ in range(operations)]

    def one(i: int) -> None:
        r = random.Random(seeds[i])
        if srv.http_port and r.random() < 0.4:
            _http_op(srv.http_port, r, figures, lock)
        else:
            _grpc_op(stub, r, figures, lock)

    with ThreadPoolExecutor(max_workers=8) as pool:
        for future in [pool.submit(one, i) for i in range(operations)]:
            future.result()
    channel.close()
