"""The MCP tools through the official SDK client, over every transport:
/mcp (both protocol eras) and `codex-image mcp` (stdio, over gRPC), against
one real server with the fake codex."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import time

import anyio
import pytest
from codeximage.v1 import image_service_pb2 as pb
from mcp import types
from PIL import Image

from tests.support import procs

from .conftest import KEY
from .sessions import TRANSPORTS, connect

pytestmark = pytest.mark.parametrize("transport", TRANSPORTS)


def run(scenario):
    return asyncio.run(scenario())


def _images(result: types.CallToolResult) -> list[types.ImageContent]:
    return [c for c in result.content if isinstance(c, types.ImageContent)]


def _size(content: types.ImageContent) -> tuple[int, int]:
    with Image.open(io.BytesIO(base64.b64decode(content.data))) as img:
        return img.size


def test_initialize_and_list_tools(server, transport):
    async def scenario():
        async with connect(server, transport, key=KEY) as client:
            listed = await client.list_tools()
            tools = {t.name: t for t in listed.tools}
            assert set(tools) == {
                "generate_image",
                "edit_image",
                "list_images",
                "get_image",
                "capabilities",
            }
            props = tools["generate_image"].input_schema["properties"]
            # The server's own choices, as enums.
            assert props["quality"]["enum"] == ["auto", "high", "medium", "low"]
            assert props["output_format"]["enum"] == ["png", "jpeg", "webp"]
            assert "transparent" in props["background"]["enum"]
            assert (
                "1536x1024" in props["size"]["anyOf"][0]["enum"] and props["count"]["maximum"] == 4
            )
            assert "16:9" in props["aspect"]["enum"]
            return client.protocol_version

    version = run(scenario)
    assert version == ("2026-07-28" if transport.endswith("2026") else "2025-11-25")


def test_generate_two_at_exact_size_with_progress(server, transport):
    rid = f"mcp-two-{transport}"

    async def scenario():
        progress = []

        async def on_progress(value, total, message):
            progress.append((value, total, message))

        async with connect(server, transport, key=KEY) as client:
            result = await client.call_tool(
                "generate_image",
                {"prompt": "a red fox", "count": 2, "size": "1536x1024", "request_id": rid},
                progress_callback=on_progress,
            )
        return result, progress

    result, progress = run(scenario)
    assert not result.is_error, result.content[0].text
    images = _images(result)
    assert [_size(c) for c in images] == [(1536, 1024), (1536, 1024)]
    assert all(c.mime_type == "image/png" for c in images)
    links = [c for c in result.content if isinstance(c, types.ResourceLink)]
    entries = result.structured_content["images"]
    assert [str(link.uri) for link in links] == [f"codex-image://images/{e['id']}" for e in entries]
    assert [e["size"] for e in entries] == ["1536x1024", "1536x1024"] and all(
        e["inline"] for e in entries
    )
    assert result.structured_content["request_id"] == rid
    for entry, content in zip(entries, images, strict=True):
        assert hashlib.sha256(base64.b64decode(content.data)).hexdigest() == entry["sha256"]
        assert entry["id"] in result.content[0].text
    # Per candidate: its codex started, its image stored; progress only grows.
    values = [p[0] for p in progress]
    assert len(progress) == 4 and values == sorted(values) and progress[-1][:2] == (4, 4), progress
    assert sum("codex started" in p[2] for p in progress) == 2


def test_invalid_size_is_a_tool_error_naming_size(server, transport):
    async def scenario():
        async with connect(server, transport, key=KEY) as client:
            return await client.call_tool(
                "generate_image", {"prompt": "a fox", "size": "1537x1000"}
            )

    result = run(scenario)
    assert result.is_error
    text = result.content[0].text
    assert "`size`" in text and "INVALID_SIZE" in text and "multiple of 16" in text
    violations = result.structured_content["error"]["violations"]
    assert violations and {v["field"] for v in violations} == {"size"}


def test_argument_of_the_wrong_type_names_it(server, transport):
    async def scenario():
        async with connect(server, transport, key=KEY) as client:
            wrong = await client.call_tool("generate_image", {"prompt": "a fox", "count": "two"})
            unknown = await client.call_tool("generate_image", {"prompt": "a fox", "sizes": "1K"})
            return wrong, unknown

    wrong, unknown = run(scenario)
    assert (
        wrong.is_error and "`count`" in wrong.content[0].text and "integer" in wrong.content[0].text
    )
    assert (
        unknown.is_error
        and "`sizes`" in unknown.content[0].text
        and "size" in unknown.content[0].text
    )


def test_list_and_get_find_what_was_made(server, transport):
    word = f"heron{transport.replace('-', '')}"

    async def scenario():
        async with connect(server, transport, key=KEY) as client:
            made = await client.call_tool(
                "generate_image", {"prompt": f"a grey {word}", "size": "1024x1024"}
            )
            listed = await client.call_tool("list_images", {"prompt_contains": word})
            made_id = made.structured_content["images"][0]["id"]
            got = await client.call_tool("get_image", {"image_id": made_id})
            missing = await client.call_tool("get_image", {"image_id": "img_" + "0" * 32})
            resource = await client.read_resource(f"codex-image://images/{made_id}")
            return made, listed, got, missing, resource

    made, listed, got, missing, resource = run(scenario)
    made_entry = made.structured_content["images"][0]
    assert [e["id"] for e in listed.structured_content["images"]] == [made_entry["id"]]
    assert made_entry["id"] in listed.content[0].text
    assert not got.is_error and _size(_images(got)[0]) == (1024, 1024)
    assert (
        hashlib.sha256(base64.b64decode(_images(got)[0].data)).hexdigest() == made_entry["sha256"]
    )
    assert missing.is_error and "NOT_FOUND" in missing.content[0].text
    (contents,) = resource.contents
    assert contents.mime_type == "image/png"
    assert hashlib.sha256(base64.b64decode(contents.blob)).hexdigest() == made_entry["sha256"]


def test_abandoned_call_leaves_no_codex(server, transport):
    """The host cancels the call (the SDK sends notifications/cancelled, or
    on the 2026 wire closes the request's stream): every codex of it dies."""
    rid = f"mcp-cancel-{transport}"

    async def scenario():
        async with connect(server, transport, key=KEY) as client:
            with anyio.move_on_after(30) as scope:
                async with anyio.create_task_group() as group:
                    group.start_soon(
                        client.call_tool,
                        "generate_image",
                        {"prompt": "x [[fake delay=60 child=1]]", "count": 2, "request_id": rid},
                    )
                    deadline = time.monotonic() + 20
                    while not (
                        len(server.runs_of(rid)) == 2
                        and all(procs.running(r["child_pid"]) for r in server.runs_of(rid))
                    ):
                        assert time.monotonic() < deadline, "codex did not start"
                        await anyio.sleep(0.05)
                    group.cancel_scope.cancel()
            assert not scope.cancelled_caught
            # The session still serves after the cancellation.
            assert (await client.call_tool("capabilities", {})).structured_content[
                "max_images"
            ] == 4

    run(scenario)
    runs = server.runs_of(rid)
    assert len(runs) == 2
    assert procs.wait_until(lambda: procs.all_gone(runs), timeout=10), [
        r for r in runs if not procs.run_gone(r)
    ]
    # ... and its slots are given back (a request cancelled twice once kept them).
    assert procs.wait_until(lambda: slots_in_use(server) == 0, timeout=10)


def slots_in_use(server) -> int:
    health = server.stub().Health(pb.HealthRequest(), metadata=(("x-api-key", KEY),), timeout=10)
    return health.slots.in_use
