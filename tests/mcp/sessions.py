"""The official MCP SDK's client, over either transport of ours.

    async with connect(server, "http-legacy", key=KEY) as client: ...

Transports: "http-legacy" (the initialize handshake and a session, as the
agent hosts of 2025 speak it), "http-2026" (the SDK's default: discover,
then one self-contained POST per request), "stdio-legacy" and "stdio-2026"
(`codex-image mcp` started as a command, calling the server over gRPC).
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

TRANSPORTS = ("http-legacy", "http-2026", "stdio-legacy", "stdio-2026")
CODEX_IMAGE = str(Path(sys.executable).parent / "codex-image")


def _mode(transport: str) -> str:
    return "legacy" if transport.endswith("legacy") else "auto"


@contextlib.asynccontextmanager
async def http(base: str, *, key: str | None, mode: str = "legacy"):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx2.AsyncClient(headers=headers, timeout=120) as http_client:
        async with Client(
            streamable_http_client(base + "/mcp", http_client=http_client), mode=mode
        ) as client:
            yield client


def stdio_params(
    target: str, *, key: str | None, args=(), cwd: Path | None = None
) -> StdioServerParameters:
    env = {"CODEX_IMAGE_ADDR": target}
    if key:
        env["CODEX_IMAGE_API_KEY"] = key
    return StdioServerParameters(command=CODEX_IMAGE, args=["mcp", *args], env=env, cwd=cwd)


@contextlib.asynccontextmanager
async def stdio(
    target: str, *, key: str | None, mode: str = "legacy", args=(), cwd: Path | None = None
):
    async with Client(stdio_params(target, key=key, args=args, cwd=cwd), mode=mode) as client:
        yield client


def connect(server, transport: str, *, key: str | None, cwd: Path | None = None):
    if transport.startswith("http"):
        return http(server.http_base, key=key, mode=_mode(transport))
    return stdio(server.grpc_target, key=key, mode=_mode(transport), cwd=cwd)
