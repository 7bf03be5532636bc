"""What the HTTP shim costs on loopback, against the direct gRPC call.

    .venv/bin/python bench/shim_bench.py [--runs 5] [--mb 30] [--seconds 3] [--threads 8]

1. Download of one ~30 MB image (put into the output store with the store's
   own writer) through `GET /v1/images/{id}/file` and through `GetImageFile`,
   each divided by reading the same file from disk (64 KiB reads) in the same
   run: a throughput ratio (1.0 = as fast as the disk read).
2. `GET /v1/capabilities` through the shim vs. the direct gRPC call on one
   keep-alive connection / one channel: median latency and the ratio; then a
   closed-loop load generator (N threads, bounded by time and count) for
   requests per second.
Medians over --runs runs. The load generator is Python in its own process, so
absolute requests/s say as much about the client as about the server; the
ratio between the two paths is the figure to watch.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: tests.* lives at the root

from codex_image_server.store import INDEX_FILE, OutputStore
from codeximage.v1 import image_service_pb2 as pb
from PIL import Image

from tests.support.server_proc import start_server

MB = 1024 * 1024
READ = 64 * 1024


def make_image(output_dir: Path, state_dir: Path, size_mb: int):
    """A real PNG of noise (incompressible), ~size_mb, saved as the server would."""
    side = int((size_mb * MB / 3) ** 0.5)
    img = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    tmp = output_dir.parent / "noise.png"
    img.save(tmp, compress_level=1)
    data = tmp.read_bytes()
    tmp.unlink()
    store = OutputStore(output_dir, state_dir / INDEX_FILE)
    record = store.save(
        data,
        request_id="bench",
        index=0,
        label="Candidate 1",
        mime_type="image/png",
        width=side,
        height=side,
        revised_prompt="",
        thread_id="",
        prompt="bench",
        requested_size="auto",
        resolved_size="auto",
        aspect="",
        quality="auto",
        output_format="png",
        duration_ms=0,
        created_unix_ms=int(time.time() * 1000),
    )
    store.close()
    return record, output_dir / record.file_name


def read_disk(path: Path) -> int:
    n = 0
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(READ):
            n += len(chunk)
    return n


def read_shim(port: int, image_id: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", f"/v1/images/{image_id}/file")
    resp = conn.getresponse()
    assert resp.status == 200, resp.status
    n = 0
    while chunk := resp.read(1 * MB):
        n += len(chunk)
    conn.close()
    return n


def read_grpc(stub, image_id: str) -> int:
    return sum(len(m.data) for m in stub.GetImageFile(pb.GetImageFileRequest(image_id=image_id)))


def timed(fn, *args) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = fn(*args)
    return time.perf_counter() - t0, n


def bench_download(srv, record, path, runs: int) -> dict:
    stub = srv.stub()
    read_disk(path)  # warm the page cache for all three alike
    ratios_shim, ratios_grpc, mbps = [], [], {"disk": [], "shim": [], "grpc": []}
    for _ in range(runs):
        disk_s, n = timed(read_disk, path)
        shim_s, n_shim = timed(read_shim, srv.http_port, record.id)
        grpc_s, n_grpc = timed(read_grpc, stub, record.id)
        assert n == n_shim == n_grpc == record.byte_size
        mbps["disk"].append(n / MB / disk_s)
        mbps["shim"].append(n / MB / shim_s)
        mbps["grpc"].append(n / MB / grpc_s)
        ratios_shim.append(disk_s / shim_s)
        ratios_grpc.append(disk_s / grpc_s)
    return {
        "bytes": record.byte_size,
        "median_MBps": {k: round(statistics.median(v), 1) for k, v in mbps.items()},
        "shim_over_disk": round(statistics.median(ratios_shim), 4),
        "grpc_over_disk": round(statistics.median(ratios_grpc), 4),
    }


def latencies(call, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        call()
        out.append(time.perf_counter() - t0)
    return out


class ShimClient:
    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def __call__(self):
        self.conn.request("GET", "/v1/capabilities")
        resp = self.conn.getresponse()
        body = resp.read()
        assert resp.status == 200 and body

    def close(self):
        self.conn.close()


def load(make_call, threads: int, seconds: float, max_requests: int) -> float:
    """Closed loop: each thread sends its next request when the last returned."""
    done = [0] * threads
    stop_at = time.perf_counter() + seconds
    per_thread = max_requests // threads

    def worker(i):
        call = make_call()
        while done[i] < per_thread and time.perf_counter() < stop_at:
            call()
            done[i] += 1

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    t0 = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(done) / (time.perf_counter() - t0)


def bench_capabilities(
    srv, runs: int, n: int, threads: int, seconds: float, max_requests: int
) -> dict:
    stub = srv.stub()

    def direct():
        return stub.GetCapabilities(pb.GetCapabilitiesRequest())

    shim = ShimClient(srv.http_port)
    latencies(direct, 50)
    latencies(shim, 50)  # warm up both
    lat_shim, lat_grpc, rps_shim, rps_grpc = [], [], [], []
    for _ in range(runs):
        lat_grpc.append(statistics.median(latencies(direct, n)))
        lat_shim.append(statistics.median(latencies(shim, n)))
        rps_grpc.append(load(lambda: direct, threads, seconds, max_requests))
        rps_shim.append(load(lambda: ShimClient(srv.http_port), threads, seconds, max_requests))
    shim.close()

    def ms(s):
        return round(s * 1000, 3)

    return {
        "median_latency_ms": {
            "grpc": ms(statistics.median(lat_grpc)),
            "shim": ms(statistics.median(lat_shim)),
        },
        "latency_ratio_shim_over_grpc": round(
            statistics.median(lat_shim) / statistics.median(lat_grpc), 2
        ),
        "requests_per_s": {
            "grpc": round(statistics.median(rps_grpc)),
            "shim": round(statistics.median(rps_shim)),
        },
        "rps_ratio_shim_over_grpc": round(
            statistics.median(rps_shim) / statistics.median(rps_grpc), 2
        ),
        "load": {"threads": threads, "seconds_max": seconds, "requests_max": max_requests},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mb", type=int, default=30)
    parser.add_argument("--latency-n", type=int, default=300)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--max-requests", type=int, default=20000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="shim-bench-") as tmp:
        tmp = Path(tmp)
        record, path = make_image(tmp / "output", tmp / "state", args.mb)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == record.sha256
        with start_server(
            tmp, http=True, output_dir=tmp / "output", state_dir=tmp / "state"
        ) as srv:
            result = {
                "download": bench_download(srv, record, path, args.runs),
                "capabilities": bench_capabilities(
                    srv, args.runs, args.latency_n, args.threads, args.seconds, args.max_requests
                ),
                "runs": args.runs,
                "cpus": os.cpu_count(),
            }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
