"""`codex-image mcp`: MCP on stdin/stdout, calling a running server over gRPC.

An agent host starts this as a command. It does not start a server (nor
codex): when none answers, every tool says how to start one. Reference
paths are read as the host's own user, relative to the directory the host
started this in. A cancelled tool call cancels its gRPC call, and a host
that goes away (stdin closes) ends the process, whose closed channel
cancels whatever still runs: the server kills those codex runs.
"""

from __future__ import annotations

import asyncio

from mcp.server.stdio import stdio_server

from . import server
from .backend import GrpcBackend, PathPolicy

PATHS = ", or a file path (read by this process, relative to the directory the host started it in)"


async def serve(target: str, api_key: str | None, inline_max_bytes: int) -> None:
    backend = GrpcBackend(
        target, api_key, inline_max_bytes=inline_max_bytes, policy=PathPolicy.any()
    )
    mcp_server = server.build(lambda ctx: backend, PATHS)
    try:
        async with stdio_server() as (read, write):
            await mcp_server.run(read, write, mcp_server.create_initialization_options())
    finally:
        await backend.close()


def run(target: str, api_key: str | None, inline_max_bytes: int) -> int:
    try:
        asyncio.run(serve(target, api_key, inline_max_bytes))
    except KeyboardInterrupt:
        return 130
    return 0
