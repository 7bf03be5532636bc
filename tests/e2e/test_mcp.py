"""An agent's call through `/mcp` with the real codex: edit_image with a
reference as a data URL and at an exact size, the reference reaching the
upstream byte-identical, and the images coming back as MCP image content."""

from __future__ import annotations

import asyncio
import base64
import hashlib

import pytest
from mcp import types

from tests.mcp.sessions import http

from .calls import dimensions
from .test_generate import _encoded, _noisy

pytestmark = pytest.mark.realcodex


def test_edit_image_through_mcp(http_server, fresh):
    ref = _encoded(_noisy(900, 600, seed=11), "PNG")
    url = "data:image/png;base64," + base64.b64encode(ref).decode()
    progress = []

    async def scenario():
        async def on_progress(value, total, message):
            progress.append(value)

        async with http(http_server.http_base, key=None) as client:
            return await client.call_tool(
                "edit_image",
                {
                    "prompt": "the same scene at night",
                    "images": [url],
                    "count": 2,
                    "size": "1536x1024",
                },
                progress_callback=on_progress,
            )

    result = asyncio.run(scenario())
    assert not result.is_error, result.content[0].text
    images = [c for c in result.content if isinstance(c, types.ImageContent)]
    assert len(images) == 2 and progress == [1, 2, 3, 4]
    for content, entry in zip(images, result.structured_content["images"], strict=True):
        data = base64.b64decode(content.data)
        assert "%dx%d" % dimensions(data) == entry["size"] == "1536x1024"
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    received = fresh.references_received()
    assert len(received) == 2 and all(
        r["sha256"] == hashlib.sha256(ref).hexdigest() for r in received
    )
    assert [u["usage"] for u in result.structured_content["references"]] == ["original"]
