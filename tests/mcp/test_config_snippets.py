"""docs/mcp.md's host configurations, checked as far as this machine can:
each TOML and JSON snippet parses, Codex 0.169.0 reads the TOML ones as
meant, and each command or URL they name starts and answers MCP (initialize,
tools/list) against a running server."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

from mcp import Client

from tests.e2e import realcodex

from .conftest import KEY
from .sessions import CODEX_IMAGE, http, stdio_params

DOC = (Path(__file__).resolve().parents[2] / "docs" / "mcp.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC, re.S)


def _toml_servers() -> dict:
    servers = {}
    for block in _blocks("toml"):
        servers.update(tomllib.loads(block)["mcp_servers"])
    return servers


def _json_servers() -> list[dict]:
    return [
        entry for block in _blocks("json") for entry in json.loads(block)["mcpServers"].values()
    ]


def _claude_commands() -> list[list[str]]:
    lines = [
        line
        for block in _blocks("sh")
        for line in block.splitlines()
        if line.startswith("claude mcp add")
    ]
    assert len(lines) == 2
    return [shlex.split(line) for line in lines]


def _stdio_answers(command: str, args: list[str], env: dict, server) -> list[str]:
    """Start the command as a host would (found on PATH) and list its tools."""
    assert command == "codex-image" and Path(CODEX_IMAGE).is_file(), (
        "the snippet names our installed command"
    )
    env = {**env, "CODEX_IMAGE_ADDR": server.grpc_target, "CODEX_IMAGE_API_KEY": KEY}

    async def scenario():
        params = stdio_params(server.grpc_target, key=KEY, args=args[1:])
        params.env = env
        async with Client(params, mode="legacy") as client:
            return [t.name for t in (await client.list_tools()).tools]

    return asyncio.run(scenario())


def _http_answers(url: str, server) -> list[str]:
    assert url == "http://127.0.0.1:17341/mcp", "the default HTTP port's /mcp"

    async def scenario():
        async with http(server.http_base, key=KEY) as client:
            return [t.name for t in (await client.list_tools()).tools]

    return asyncio.run(scenario())


def test_codex_reads_the_toml_as_meant(tmp_path):
    codex = realcodex.codex_or_skip()
    (tmp_path / "config.toml").write_text("\n".join(_blocks("toml")))
    out = subprocess.run(
        [str(codex), "mcp", "list", "--json"],
        env={**os.environ, "CODEX_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    read = {entry["name"]: entry["transport"] for entry in json.loads(out)}
    assert read["codex-image"]["type"] == "stdio"
    assert (read["codex-image"]["command"], read["codex-image"]["args"]) == ("codex-image", ["mcp"])
    assert read["codex-image"]["env_vars"] == ["CODEX_IMAGE_API_KEY"]
    assert read["codex-image-http"] == {
        **read["codex-image-http"],
        "type": "streamable_http",
        "url": "http://127.0.0.1:17341/mcp",
        "bearer_token_env_var": "CODEX_IMAGE_API_KEY",
    }


def test_toml_servers_start_and_answer(server):
    servers = _toml_servers()
    stdio = servers["codex-image"]
    assert "generate_image" in _stdio_answers(
        stdio["command"], stdio["args"], stdio.get("env", {}), server
    )
    assert "generate_image" in _http_answers(servers["codex-image-http"]["url"], server)


def test_mcp_json_servers_start_and_answer(server):
    stdio, remote = _json_servers()
    assert "generate_image" in _stdio_answers(stdio["command"], stdio["args"], stdio["env"], server)
    assert remote["type"] == "http" and remote["headers"]["Authorization"].startswith("Bearer ")
    assert "generate_image" in _http_answers(remote["url"], server)


def test_claude_code_lines_name_what_exists(server):
    stdio, remote = _claude_commands()
    command = stdio[stdio.index("--") + 1 :]
    env = dict(stdio[i + 1].split("=", 1) for i, word in enumerate(stdio) if word == "-e")
    assert env == {"CODEX_IMAGE_ADDR": "127.0.0.1:17342"}
    assert "generate_image" in _stdio_answers(command[0], command[1:], env, server)
    assert remote[remote.index("--transport") + 1] == "http"
    (url,) = [word for word in remote if word.startswith("http://")]
    assert "generate_image" in _http_answers(url, server)
