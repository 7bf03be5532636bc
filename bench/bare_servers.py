"""Baselines for bench/core_bench.py: the least a server can do, on the same
stack as ours (one asyncio loop, aiohttp / grpc.aio), in its own process.

    python bench/bare_servers.py http  BODY_FILE CONTENT_TYPE  # GET any path -> those bytes
    python bench/bare_servers.py file  PATH           # GET any path -> FileResponse(PATH)
    python bench/bare_servers.py grpc  BODY_FILE      # GetCapabilities -> that message
    python bench/bare_servers.py grpcfile PATH        # GetImageFile -> PATH in 1 MiB chunks
    python bench/bare_servers.py grpchold SECONDS     # Generate: parse, hold, one empty answer
    python bench/bare_servers.py grpcrun  ARGV_JSON   # Generate: run ARGV, then 3 empty messages
    python bench/bare_servers.py httprun  ARGV_JSON   # POST any path: run ARGV, then small JSON

Prints `port=<n>` once listening; runs until SIGTERM.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import sys
from pathlib import Path


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def http(handler, method: str = "GET") -> None:
    from aiohttp import web

    app = web.Application()
    app.router.add_route(method, "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    print(f"port={site._server.sockets[0].getsockname()[1]}", flush=True)
    await _until_stopped()
    await runner.cleanup()


async def grpc_constant(body: bytes) -> None:
    import grpc
    from codeximage.v1 import image_service_pb2 as pb

    constant = pb.GetCapabilitiesResponse.FromString(body)

    async def get_capabilities(request, context):
        return constant

    await grpc_serve(
        {
            "GetCapabilities": grpc.unary_unary_rpc_method_handler(
                get_capabilities,
                request_deserializer=pb.GetCapabilitiesRequest.FromString,
                response_serializer=pb.GetCapabilitiesResponse.SerializeToString,
            )
        }
    )


async def grpc_file(path: Path) -> None:
    """The least a GetImageFile can do: the file in 1 MiB chunks, each read
    off the loop (as ours is)."""
    import grpc
    from codeximage.v1 import image_service_pb2 as pb

    # The first chunk announces size and sha256 as ours does (the Go client checks them).
    data = path.read_bytes()
    announce = {"total_size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    del data

    async def get_image_file(request, context):
        loop = asyncio.get_running_loop()
        first = announce
        with open(path, "rb", buffering=0) as f:
            while chunk := await loop.run_in_executor(None, f.read, 1024 * 1024):
                yield pb.GetImageFileResponse(data=chunk, **first)
                first = {}

    await grpc_serve(
        {
            "GetImageFile": grpc.unary_stream_rpc_method_handler(
                get_image_file,
                request_deserializer=pb.GetImageFileRequest.FromString,
                response_serializer=pb.GetImageFileResponse.SerializeToString,
            )
        }
    )


async def grpc_hold(seconds: float) -> None:
    """The least a Generate with references can cost in memory on this
    stack: the request received, parsed (as ours is, after its key check)
    and held for `seconds`, like a generation would."""
    import grpc
    from codeximage.v1 import image_service_pb2 as pb

    async def generate(request, context):
        message = pb.GenerateRequest.FromString(request)
        del request
        await asyncio.sleep(seconds if message.references else 0)
        yield pb.GenerateResponse()

    await grpc_serve(
        {
            "Generate": grpc.unary_stream_rpc_method_handler(
                generate,
                request_deserializer=None,
                response_serializer=pb.GenerateResponse.SerializeToString,
            )
        },
        [("grpc.max_receive_message_length", 512 * 1024 * 1024)],
    )


async def _run(argv: list[str]) -> None:
    """The process a Generate waits for, run the plain asyncio way."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    await proc.communicate()


async def grpc_run(argv: list[str]) -> None:
    """The least a Generate can do around a codex run: start it, wait for
    it, and end with as many messages as ours sends once the image is there
    (candidate finished, image, summary)."""
    import grpc

    async def generate(request, context):
        await _run(argv)
        for _ in range(3):
            yield b""

    await grpc_serve({"Generate": grpc.unary_stream_rpc_method_handler(generate)})


async def http_run(argv: list[str]) -> None:
    from aiohttp import web

    async def handler(request):
        await request.read()
        await _run(argv)
        return web.json_response({"images": [], "status": "completed"})

    await http(handler, "POST")


async def grpc_serve(handlers: dict, options=()) -> None:
    import grpc

    server = grpc.aio.server(options=list(options))
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("codeximage.v1.ImageService", handlers),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"port={port}", flush=True)
    await _until_stopped()
    await server.stop(0)


def main(argv: list[str]) -> int:
    kind = argv[0]
    if kind == "http":
        from aiohttp import web

        body, content_type = Path(argv[1]).read_bytes(), argv[2]

        async def handler(request):
            return web.Response(body=body, content_type=content_type)

        asyncio.run(http(handler))
    elif kind == "file":
        from aiohttp import web

        path = Path(argv[1])

        async def handler(request):
            return web.FileResponse(path)

        asyncio.run(http(handler))
    elif kind == "grpc":
        asyncio.run(grpc_constant(Path(argv[1]).read_bytes()))
    elif kind == "grpcfile":
        asyncio.run(grpc_file(Path(argv[1])))
    elif kind == "grpchold":
        asyncio.run(grpc_hold(float(argv[1])))
    elif kind == "grpcrun":
        asyncio.run(grpc_run(json.loads(argv[1])))
    elif kind == "httprun":
        asyncio.run(http_run(json.loads(argv[1])))
    else:
        raise SystemExit(f"unknown kind {kind!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
