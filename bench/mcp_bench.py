"""What the MCP surface adds to a generation, against the same generation
over gRPC, with the fake codex, on one server per run.

    .venv/bin/python bench/mcp_bench.py [--runs 5] [--calls 15] [--size 1024x1024]

Each run starts a fresh server and makes --calls generations of one image
each way, interleaved (gRPC, /mcp, stdio, gRPC, ...), after one warm-up call
of each:
- gRPC: Generate, then the image's bytes with GetImageFile (what an MCP
  answer carries inline);
- /mcp: the official MCP SDK client's `generate_image` over streamable HTTP
  (one 2025-11-25 session for the run);
- stdio: the same through `codex-image mcp` (one session for the run), which
  itself calls the server over gRPC.
Per run: the median wall time of each way and its ratio to gRPC's; the
figures are the medians of those over --runs runs. Target: /mcp <= 1.05x.

A generation's time swings with the machine's load (the fake codex is a
process start), so each run also times the surface alone, without codex:
--calls x 4 `capabilities` calls each way against GetCapabilities; what
/mcp adds there, in ms, is shown as a share of the gRPC generation.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: tests.* lives at the root

import grpc
from codeximage.v1 import (
    image_service_pb2 as pb,
    image_service_pb2_grpc,
)

from tests.mcp.sessions import http, stdio
from tests.support.server_proc import start_server


async def grpc_call(stub, size: str) -> int:
    image = None
    async for event in stub.Generate(pb.GenerateRequest(prompt="a lighthouse", size=size)):
        if event.WhichOneof("event") == "image":
            image = event.image
    data = b"".join(
        [c.data async for c in stub.GetImageFile(pb.GetImageFileRequest(image_id=image.id))]
    )
    assert len(data) == image.byte_size
    return len(data)


async def mcp_call(client, size: str) -> int:
    result = await client.call_tool("generate_image", {"prompt": "a lighthouse", "size": size})
    assert not result.is_error, result.content[0].text
    return len(result.content[1].data)


async def _timed(ways: dict, calls: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in ways}
    for way in ways.values():  # warm-up: connections, first imports, first codex start
        await way()
    for _ in range(calls):
        for name, way in ways.items():
            start = time.perf_counter()
            await way()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


async def one_run(srv, calls: int, size: str) -> dict[str, float]:
    async with (
        grpc.aio.insecure_channel(srv.grpc_target) as channel,
        http(srv.http_base, key=None) as over_http,
        stdio(srv.grpc_target, key=None) as over_stdio,
    ):
        stub = image_service_pb2_grpc.ImageServiceStub(channel)
        result = await _timed(
            {
                "grpc": lambda: grpc_call(stub, size),
                "mcp_http": lambda: mcp_call(over_http, size),
                "mcp_stdio": lambda: mcp_call(over_stdio, size),
            },
            calls,
        )
        alone = await _timed(
            {
                "caps_grpc": lambda: stub.GetCapabilities(pb.GetCapabilitiesRequest()),
                "caps_http": lambda: over_http.call_tool("capabilities", {}),
            },
            calls * 4,
        )
    return {**result, **alone}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--calls", type=int, default=15)
    parser.add_argument("--size", default="1024x1024")
    args = parser.parse_args()
    medians = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp, start_server(Path(tmp), http=True) as srv:
            result = asyncio.run(one_run(srv, args.calls, args.size))
        medians.append(result)
        print(
            f"run {run + 1}: grpc {result['grpc'] * 1000:.1f} ms, /mcp "
            f"{result['mcp_http'] * 1000:.1f} ms "
            f"({result['mcp_http'] / result['grpc']:.3f}x), stdio "
            f"{result['mcp_stdio'] * 1000:.1f} ms "
            f"({result['mcp_stdio'] / result['grpc']:.3f}x); alone: /mcp adds "
            f"{(result['caps_http'] - result['caps_grpc']) * 1000:.2f} ms a call",
            flush=True,
        )
    grpc_ms = statistics.median(m["grpc"] for m in medians) * 1000
    http_ratio = statistics.median(m["mcp_http"] / m["grpc"] for m in medians)
    stdio_ratio = statistics.median(m["mcp_stdio"] / m["grpc"] for m in medians)
    added_ms = statistics.median(m["caps_http"] - m["caps_grpc"] for m in medians) * 1000
    print(
        f"median of {args.runs} runs ({args.calls} calls each, {args.size}): gRPC {grpc_ms:.1f} "
        "ms; "
        f"/mcp {http_ratio:.3f}x ({(http_ratio - 1) * 100:+.1f} %, target <= +5 %); "
        f"stdio {stdio_ratio:.3f}x ({(stdio_ratio - 1) * 100:+.1f} %); the surface alone adds "
        f"{added_ms:.2f} ms a call, {added_ms / grpc_ms * 100:.1f} % of the gRPC generation"
    )


if __name__ == "__main__":
    main()
