"""What only `codex-image mcp` does: it reports a missing server clearly
(it starts none), and it reads reference files as the host's own user."""
from __future__ import annotations

import asyncio
import socket

from PIL import Image

from .conftest import KEY
from .sessions import stdio


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
            return await client.call_tool("generate_image", {"prompt": "like mine", "references": ["mine.png"]})

    result = asyncio.run(scenario())
    assert not result.is_error, result.content[0].text
    (use,) = result.structured_content["references"]
    assert use["size"] == "80x60" and "mine.png" in use["label"]
