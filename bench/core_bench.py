"""The one-loop core's figures, each against a baseline measured
in the same run (medians over --runs, interleaved so load drift hits both).

    .venv/bin/python bench/core_bench.py [--runs 3] [--seconds 5]
        [--only fixed grpc download stalled refs]

fixed     GET /v1/capabilities and /healthz through the shim vs. a bare aiohttp
          handler returning the same bytes: wrk -t2 -c16 (goal >= 8,000 req/s
          and >= 0.8x the bare handler)
grpc      GetCapabilities vs. a bare grpc.aio server returning the same
          constant, ghz -c16 (goal >= 0.8x)
download  a 30 MB image: shim vs. aiohttp serving the same file statically
          (curl, goal >= 0.8x); GetImageFile with a Python client and with the Go
          client (bench/gofetch), each also against a bare grpc.aio server (goal >= 500 MB/s)
stalled   200 clients stalled mid-download on a 25 MB image while 4 candidates
          generate: grpc.health Check p99 (goal <= 50 ms), a new Generate
          completes, the stalled connections are closed after the idle
          timeout, server fds and RSS back to baseline
refs      server RSS with 4 requests of 4 x 20 MB references in flight, above
          the idle baseline, divided by the payload (goal <= 2), a fresh
          server each run, beside a bare grpc.aio server that only receives,
          parses and holds them; and the same references over HTTP as the
          plugin sends them (base64 JSON, a figure)
wrk, ghz: `make bench-tools` (apt-get / go install into .tools/bin).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import io
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import grpc
from codeximage.v1 import image_service_pb2 as pb
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image

from tests.support import procs
from tests.support.server_proc import start_server
from tests.support.stalled import established, stalled_download

sys.path.insert(0, str(ROOT / "bench"))
from shim_bench import make_image

MB = 1024 * 1024
BARE = ROOT / "bench" / "bare_servers.py"
GHZ = shutil.which("ghz") or str(ROOT / ".tools" / "bin" / "ghz")
PY = sys.executable
RESULTS: dict = {}


def report(name: str, value: float, goal: str, ok: bool, command: str, **extra) -> None:
    RESULTS[name] = {"value": round(value, 3), "goal": goal, "met": ok, "command": command, **extra}
    print(
        f"{'MET ' if ok else 'MISS'} {name:44s} {value:12.3f}  goal {goal}   [{command}]",
        flush=True,
    )


@contextlib.contextmanager
def bare(kind: str, *args: str, env: dict | None = None):
    proc = subprocess.Popen(
        [PY, str(BARE), kind, *args], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        line = proc.stdout.readline()
        yield int(line.strip().split("=")[1])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def wrk(port: int, path: str, seconds: int) -> tuple[float, float]:
    """(requests/s, median latency ms)."""
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", f"http://127.0.0.1:{port}{path}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"50%\s+([\d.]+)(us|ms|s)\b", out)
    median = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    return rps, median


def ghz(port: int, seconds: int) -> float:
    out = subprocess.run(
        [
            GHZ,
            "--insecure",
            "--proto",
            str(ROOT / "protos/codeximage/v1/image_service.proto"),
            "-i",
            str(ROOT / "protos"),
            "--call",
            "codeximage.v1.ImageService.GetCapabilities",
            "-c",
            "16",
            "-z",
            f"{seconds}s",
            "--format",
            "json",
            f"127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(json.loads(out)["rps"])


def bench_fixed(srv, runs: int, seconds: int, tmp: Path) -> None:
    for path in ("/v1/capabilities", "/healthz"):
        body = subprocess.run(
            ["curl", "-s", f"{srv.http_base}{path}"], capture_output=True, check=True
        ).stdout
        body_file = tmp / "body.json"
        body_file.write_bytes(body)
        ours, base = [], []
        with bare("http", str(body_file), "application/json") as port:
            for _ in range(runs):
                ours.append(wrk(srv.http_port, path, seconds))
                base.append(wrk(port, path, seconds))
        rps, base_rps = statistics.median(r for r, _ in ours), statistics.median(r for r, _ in base)
        cmd = f"wrk -t2 -c16 -d{seconds}s --latency http://127.0.0.1:PORT{path}, {runs} runs"
        report(
            f"shim {path} req/s",
            rps,
            ">= 8000",
            rps >= 8000,
            cmd,
            median_latency_ms=statistics.median(m for _, m in ours),
        )
        report(
            f"shim {path} / bare aiohttp",
            rps / base_rps,
            ">= 0.8",
            rps / base_rps >= 0.8,
            cmd,
            bare_rps=base_rps,
            bare_median_latency_ms=statistics.median(m for _, m in base),
        )


def bench_grpc(srv, runs: int, seconds: int, tmp: Path) -> None:
    caps = srv.stub().GetCapabilities(pb.GetCapabilitiesRequest(), timeout=10)
    body_file = tmp / "caps.bin"
    body_file.write_bytes(caps.SerializeToString())
    ours, base = [], []
    with bare("grpc", str(body_file)) as port:
        for _ in range(runs):
            ours.append(ghz(srv.grpc_port, seconds))
            base.append(ghz(port, seconds))
    rps, base_rps = statistics.median(ours), statistics.median(base)
    cmd = (
        "ghz --insecure --call codeximage.v1.ImageService.GetCapabilities "
        f"-c 16 -z {seconds}s, {runs} runs"
    )
    report(
        "grpc GetCapabilities / bare grpc.aio",
        rps / base_rps,
        ">= 0.8",
        rps / base_rps >= 0.8,
        cmd,
        rps=rps,
        bare_rps=base_rps,
    )


def curl_speed(url: str) -> float:
    """Bytes/s, as curl measures it, body to /dev/null."""
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{speed_download} %{http_code}", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out[1] == "200", out
    return float(out[0])


def _file_stub(port: int):
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    return channel.unary_stream(
        "/codeximage.v1.ImageService/GetImageFile",
        request_serializer=pb.GetImageFileRequest.SerializeToString,
        response_deserializer=pb.GetImageFileResponse.FromString,
    )


def grpc_speed(stub, image_id: str, size: int) -> float:
    started = time.perf_counter()
    call = stub.GetImageFile if hasattr(stub, "GetImageFile") else stub
    n = sum(len(m.data) for m in call(pb.GetImageFileRequest(image_id=image_id), timeout=60))
    assert n == size
    return n / (time.perf_counter() - started)


def gofetch(tmp: Path) -> Path:
    """bench/gofetch built with the Go toolchain the Makefile installs."""
    exe = tmp / "gofetch"
    subprocess.run(["go", "build", "-o", str(exe), "."], cwd=ROOT / "bench" / "gofetch", check=True)
    return exe


def go_speeds(exe: Path, port: int, image_id: str, runs: int) -> list[float]:
    """MB/s of each of `runs` downloads by the Go client (size and sha256 checked), one
    connection."""
    out = subprocess.run(
        [str(exe), "-server", f"127.0.0.1:{port}", "-runs", str(runs), image_id],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [float(line) for line in out.split()]


def bench_download(srv, runs: int, record, path: Path, tmp: Path) -> None:
    shim, static, via_grpc, bare_grpc, go_ours, go_bare = [], [], [], [], [], []
    stub = srv.stub()
    exe = gofetch(tmp)
    with bare("file", str(path)) as port, bare("grpcfile", str(path)) as grpc_port:
        bare_stub = _file_stub(grpc_port)
        for _ in range(max(runs, 5)):
            shim.append(curl_speed(f"{srv.http_base}/v1/images/{record.id}/file"))
            static.append(curl_speed(f"http://127.0.0.1:{port}/file"))
            via_grpc.append(grpc_speed(stub, record.id, record.byte_size))
            bare_grpc.append(grpc_speed(bare_stub, record.id, record.byte_size))
            go_ours += go_speeds(exe, srv.grpc_port, record.id, 3)
            go_bare += go_speeds(exe, grpc_port, record.id, 3)
    ratio = statistics.median(shim) / statistics.median(static)
    mb = record.byte_size / MB
    report(
        f"shim file {mb:.0f} MB / aiohttp static",
        ratio,
        ">= 0.8",
        ratio >= 0.8,
        "curl -s -o /dev/null -w %{speed_download} (shim vs bare FileResponse)",
        shim_mb_s=statistics.median(shim) / MB,
        static_mb_s=statistics.median(static) / MB,
    )
    speed, bare_speed = statistics.median(via_grpc) / MB, statistics.median(bare_grpc) / MB
    report(
        f"GetImageFile {mb:.0f} MB, MB/s",
        speed,
        ">= 500",
        speed >= 500,
        "python grpc client, sum of chunks, one channel",
        bare_grpc_aio_mb_s=bare_speed,
    )
    report(
        f"GetImageFile {mb:.0f} MB / bare grpc.aio (1 MiB chunks)",
        speed / bare_speed,
        "(baseline)",
        True,
        "the same client against bench/bare_servers.py grpcfile, interleaved",
    )
    go_speed, go_bare_speed = statistics.median(go_ours), statistics.median(go_bare)
    report(
        f"GetImageFile {mb:.0f} MB, MB/s, Go client",
        go_speed,
        ">= 500",
        go_speed >= 500,
        "bench/gofetch (the Go client's Download: size and sha256 checked), one connection",
        bare_grpc_aio_mb_s=go_bare_speed,
        ratio_to_bare=round(go_speed / go_bare_speed, 3),
    )


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bench_stalled(tmp: Path, idle_s: float = 8.0, clients: int = 200) -> None:
    output = tmp / "stalled-output"
    output.mkdir()
    record, _ = make_image(output, tmp / "stalled-state", 25)
    with start_server(
        tmp / "stalled",
        http=True,
        output_dir=output,
        state_dir=tmp / "stalled-state",
        args=["--download-idle-timeout-ms", str(int(idle_s * 1000)), "--max-concurrent", "8"],
    ) as srv:
        channel = srv.channel()
        stub, health = srv.stub(channel), health_pb2_grpc.HealthStub(channel)
        for _ in range(50):  # warm
            health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        list(stub.Generate(pb.GenerateRequest(prompt="warm"), timeout=60))
        base_fds, base_rss = _fds(srv.pid), _rss_mib(srv.pid)
        socks = [
            stalled_download(srv.http_port, f"/v1/images/{record.id}/file") for _ in range(clients)
        ]
        stalled_at = time.monotonic()
        generating = threading.Thread(
            target=lambda: list(
                stub.Generate(
                    pb.GenerateRequest(prompt="four [[fake delay=4]]", count=4), timeout=120
                )
            )
        )
        generating.start()
        latencies = []
        while generating.is_alive() and len(latencies) < 2000:
            started = time.perf_counter()
            health.Check(health_pb2.HealthCheckRequest(), timeout=5)
            latencies.append(time.perf_counter() - started)
            time.sleep(0.002)
        new_ok = any(
            r.WhichOneof("event") == "summary"
            for r in stub.Generate(pb.GenerateRequest(prompt="new one"), timeout=60)
        )
        generating.join()
        peak_rss = _rss_mib(srv.pid)
        closed = procs.wait_until(
            lambda: not any(established(s) for s in socks), timeout=idle_s + 30
        )
        closed_after = time.monotonic() - stalled_at
        fds_back = procs.wait_until(lambda: _fds(srv.pid) <= base_fds + 2, timeout=15)
        end_fds, end_rss = _fds(srv.pid), _rss_mib(srv.pid)
        for s in socks:
            s.close()
        channel.close()
    lat = sorted(latencies)
    p99 = lat[min(len(lat) - 1, int(0.99 * (len(lat) - 1)))] * 1000
    cmd = (
        f"{clients} raw sockets GET the 25 MB file and never read; "
        "4 candidates (fake, 4 s) generate"
    )
    report(
        "stalled: grpc.health Check p99 ms",
        p99,
        "<= 50",
        p99 <= 50,
        cmd,
        p50_ms=statistics.median(lat) * 1000,
        checks=len(lat),
    )
    report("stalled: a new Generate completes", float(new_ok), "== 1", new_ok, cmd)
    report(
        "stalled: all closed after idle timeout, s",
        closed_after,
        f">= {idle_s} and all closed",
        closed and closed_after >= idle_s,
        cmd,
        idle_timeout_s=idle_s,
    )
    report(
        "stalled: server fds end - baseline",
        end_fds - base_fds,
        "<= 2 (back to baseline)",
        fds_back,
        cmd,
        baseline_fds=base_fds,
    )
    report(
        "stalled: server RSS end - baseline, MiB",
        end_rss - base_rss,
        "<= 20 (back to baseline)",
        end_rss - base_rss <= 20,
        cmd,
        baseline_mib=base_rss,
        peak_mib=peak_rss,
    )


def _peak_above_idle(pid: int, stub_generate, request, requests: int) -> tuple[float, float, float]:
    """(idle MiB, peak MiB, peak - idle in bytes) while `requests` calls of
    `request` run side by side, RSS sampled every 10 ms."""
    base = _rss_mib(pid)
    peak, done = base, threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_mib(pid))
            done.wait(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    failed = []

    def call():
        try:
            list(stub_generate(request, timeout=120))
        except Exception as exc:  # noqa: BLE001 - reported below: a failed call makes the figure meaningless
            failed.append(exc)

    calls = [threading.Thread(target=call) for _ in range(requests)]
    for c in calls:
        c.start()
    for c in calls:
        c.join()
    done.set()
    sampler.join()
    if failed:
        raise SystemExit(f"{len(failed)} of {requests} calls failed: {failed[0]!r}")
    return base, peak, (peak - base) * MB


def _http_peak_above_idle(
    pid: int, port: int, body: bytes, requests: int
) -> tuple[float, float, float]:
    """_peak_above_idle for POST /v1/images/generate (the plugin's JSON)."""

    def post():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.request(
            "POST", "/v1/images/generate", body=body, headers={"Content-Type": "application/json"}
        )
        reply = conn.getresponse()
        reply.read()
        conn.close()
        assert reply.status == 200, reply.status

    return _peak_above_idle(pid, lambda _request, timeout: [post()], None, requests)


def bench_refs(tmp: Path, runs: int, requests: int = 4, refs: int = 4, ref_mb: int = 20) -> None:
    side = int((ref_mb * MB / 3) ** 0.5) - 8
    images = []
    for _ in range(refs):
        out = io.BytesIO()
        Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(
            out, format="PNG", compress_level=0
        )
        images.append(out.getvalue())
    payload = requests * sum(len(i) for i in images)
    refs_pb = [pb.Reference(image=i) for i in images]
    body = json.dumps(
        {
            "prompt": "refs [[fake delay=3]]",
            "references": [
                {"image": "data:image/png;base64," + base64.b64encode(i).decode()} for i in images
            ],
        }
    ).encode()
    ours, bare_ratios, via_http = [], [], []
    for n in range(runs):  # interleaved, so load drift hits all alike
        with start_server(
            tmp / f"refs-{n}",
            args=["--max-concurrent", "16", "--max-reference-pixels", "100000000"],
        ) as srv:
            stub = srv.stub()
            list(stub.Generate(pb.GenerateRequest(prompt="warm"), timeout=60))
            base, peak, above = _peak_above_idle(
                srv.pid,
                stub.Generate,
                pb.GenerateRequest(prompt="refs [[fake delay=3]]", references=refs_pb),
                requests,
            )
            ours.append(above / payload)
        with start_server(
            tmp / f"refs-http-{n}",
            http=True,
            args=["--max-concurrent", "16", "--max-reference-pixels", "100000000"],
        ) as srv:
            list(srv.stub().Generate(pb.GenerateRequest(prompt="warm"), timeout=60))
            _, _, above = _http_peak_above_idle(srv.pid, srv.http_port, body, requests)
            via_http.append(above / payload)
        # The floor on this stack: a bare grpc.aio server that only receives,
        # parses and holds the same requests as long.
        with bare("grpchold", "3") as port:
            channel = grpc.insecure_channel(
                f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 512 * MB)]
            )
            generate = channel.unary_stream(
                "/codeximage.v1.ImageService/Generate",
                request_serializer=pb.GenerateRequest.SerializeToString,
                response_deserializer=pb.GenerateResponse.FromString,
            )
            list(generate(pb.GenerateRequest(prompt="warm"), timeout=60))
            pid = int(
                subprocess.run(
                    ["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, check=True
                )
                .stdout.split("pid=")[1]
                .split(",")[0]
            )
            _, _, bare_above = _peak_above_idle(
                pid, generate, pb.GenerateRequest(prompt="refs", references=refs_pb), requests
            )
            bare_ratios.append(bare_above / payload)
            channel.close()
    ratio, bare_ratio = statistics.median(ours), statistics.median(bare_ratios)
    report(
        "refs: (peak RSS - idle) / payload",
        ratio,
        "<= 2",
        ratio <= 2,
        f"{requests} concurrent Generate over gRPC, each {refs} x {ref_mb} MB PNG references, "
        "RSS sampled every "
        f"10 ms, median of {runs} servers",
        payload_mib=payload / MB,
        runs=[round(r, 3) for r in ours],
        bare_grpc_aio_ratio=round(bare_ratio, 3),
        bare_runs=[round(r, 3) for r in bare_ratios],
    )
    report(
        "refs: ours / bare grpc.aio (receive, parse, hold)",
        ratio / bare_ratio,
        "(baseline)",
        True,
        "bench/bare_servers.py grpchold, the same requests",
    )
    report(
        "refs over HTTP: (peak RSS - idle) / payload",
        statistics.median(via_http),
        "(figure)",
        True,
        "the same references as the plugin sends them (POST /v1/images/generate, base64 JSON), "
        "a server of its own",
        runs=[round(r, 3) for r in via_http],
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument(
        "--only", nargs="*", default=["fixed", "grpc", "download", "stalled", "refs"]
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-core-") as tmp:
        tmp = Path(tmp)
        output = tmp / "output"
        output.mkdir()
        record, path = make_image(output, tmp / "state", 30)
        if {"fixed", "grpc", "download"} & set(args.only):
            with start_server(
                tmp / "main", http=True, output_dir=output, state_dir=tmp / "state"
            ) as srv:
                if "fixed" in args.only:
                    bench_fixed(srv, args.runs, args.seconds, tmp)
                if "grpc" in args.only:
                    bench_grpc(srv, args.runs, args.seconds, tmp)
                if "download" in args.only:
                    bench_download(srv, args.runs, record, path, tmp)
        if "stalled" in args.only:
            bench_stalled(tmp)
        if "refs" in args.only:
            bench_refs(tmp, args.runs)
    print(json.dumps(RESULTS, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
