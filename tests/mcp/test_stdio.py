"""What only `codex-image mcp` does: it reports a missing server clearly
(it starts none), it reads reference files as the host's own user, and a
host that dies mid-call leaves no codex behind."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess

from PIL import Image

from tests.support import procs

from .conftest import KEY
from .sessions import CODEX_IMAGE, stdio


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_missing_server_is_reported_with_how_to_start_one():
    target = f"127.0.0.1:{_free_port()}"  # nothing listens there

    async def scenario():
        async with stdio(target, key=None) as client:
            tools = await client.list_tools()
            result = await client.call_tool("generate_image", {"prompt": "a fox"})
            return tools, result

    tools, result = asyncio.run(scenario())
    assert "generate_image" in [t.name for t in tools.tools]  # listed anyway, choices unknown
    assert result.is_error
    text = result.content[0].text
    assert f"no codex-image-server answers at {target}" in text
    assert "codex-image-server" in text and "CODEX_IMAGE_ADDR" in text
    assert result.structured_content["error"]["code"] == "UNAVAILABLE"


def test_a_relative_path_is_read_from_the_hosts_directory(server, tmp_path):
    Image.new("RGB", (80, 60), (0, 90, 200)).save(tmp_path / "mine.png", "PNG")

    async def scenario():
        async with stdio(server.grpc_target, key=KEY, cwd=tmp_path) as client:
            return await client.call_tool(
                "generate_image", {"prompt": "like mine", "references": ["mine.png"]}
            )

    result = asyncio.run(scenario())
    assert not result.is_error, result.content[0].text
    (use,) = result.structured_content["references"]
    assert use["size"] == "80x60" and "mine.png" in use["label"]


def test_a_host_that_goes_away_leaves_no_codex(server):
    """The host dies mid-call (the bridge is killed by its pid): its gRPC
    channel closes, and the server kills the call's codex runs."""
    rid = "mcp-stdio-host-gone"
    env = {**os.environ, "CODEX_IMAGE_ADDR": server.grpc_target, "CODEX_IMAGE_API_KEY": KEY}
    bridge = subprocess.Popen(
        [CODEX_IMAGE, "mcp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:

        def send(message: dict) -> None:
            bridge.stdin.write((json.dumps(message) + "\n").encode())
            bridge.stdin.flush()

        send(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "host", "version": "0"},
                },
            }
        )
        assert json.loads(bridge.stdout.readline())["id"] == 1
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        send(
            {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "tools/call",
                "params": {
                    "name": "generate_image",
                    "arguments": {
                        "prompt": "x [[fake delay=60 child=1]]",
                        "count": 2,
                        "request_id": rid,
                    },
                },
            }
        )
        assert procs.wait_until(
            lambda: (
                len(server.runs_of(rid)) == 2
                and all(procs.running(r["child_pid"]) for r in server.runs_of(rid))
            ),
            timeout=20,
        )
    finally:
        bridge.kill()
        bridge.wait()
    assert not procs.exists(bridge.pid)
    runs = server.runs_of(rid)
    assert procs.wait_until(lambda: procs.all_gone(runs), timeout=10), [
        r for r in runs if not procs.run_gone(r)
    ]
