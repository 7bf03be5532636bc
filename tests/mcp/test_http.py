"""What only `/mcp` does: the key check every route makes, reference paths
only inside the directories the operator listed, a closed stream that stops
the call, and images too large to inline returned as links."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import time

import httpx2
import pytest
from mcp import types
from mcp.shared.exceptions import MCPError
from PIL import Image

from tests.support import procs
from tests.support.server_proc import start_server

from .conftest import KEY
from .sessions import http

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def run(scenario):
    return asyncio.run(scenario())


def _png(path, size=(64, 48)) -> bytes:
    Image.new("RGB", size, (200, 30, 30)).save(path, "PNG")
    return path.read_bytes()


@pytest.mark.parametrize("key", ["wrong-key", None], ids=["wrong", "none"])
def test_a_wrong_or_missing_key_is_refused(server, key):
    headers = {**ACCEPT, **({"Authorization": f"Bearer {key}"} if key else {})}
    answer = httpx2.post(server.http_base + "/mcp", json=INIT, headers=headers, timeout=30)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert answer.json()["error"]["code"] == "unauthorized"

    async def scenario():
        async with http(server.http_base, key=key) as client:
            await client.list_tools()

    refused_before = _refused(server)
    with pytest.raises(BaseException) as caught:  # the SDK cannot even initialize
        run(scenario)
    assert any(isinstance(e, MCPError) for e in _leaves(caught.value)), repr(caught.value)
    # The access line is written after the answer is sent: wait for it, bounded.
    deadline = time.monotonic() + 10
    while _refused(server) <= refused_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _refused(server) > refused_before


def _refused(server) -> int:
    return sum(
        1
        for r in server.log_records()
        if r.get("event") == "http.access" and r.get("path") == "/mcp" and r.get("status") == 401
    )


def _leaves(exc: BaseException):
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


def test_the_right_key_opens_a_session(server):
    answer = httpx2.post(
        server.http_base + "/mcp", json=INIT, headers={**ACCEPT, "X-API-Key": KEY}, timeout=30
    )
    assert answer.status_code == 200 and answer.headers.get("mcp-session-id")


def test_reference_paths_only_inside_the_listed_directory(server, reference_dir, tmp_path):
    inside = reference_dir / "inside.png"
    inside_bytes = _png(inside)
    outside = tmp_path / "outside.png"
    _png(outside)
    (reference_dir / "escape.png").symlink_to(outside)

    async def scenario():
        async with http(server.http_base, key=KEY) as client:
            calls = {}
            for name, ref in [
                ("outside", str(outside)),
                ("escape", str(reference_dir / "escape.png")),
                ("relative", "inside.png"),
                ("passwd", "/etc/passwd"),
                ("missing", str(reference_dir / "nope.png")),
                ("inside", str(inside)),
            ]:
                calls[name] = await client.call_tool(
                    "generate_image", {"prompt": "like this", "references": [ref]}
                )
            return calls

    calls = run(scenario)
    for name in ("outside", "escape", "relative", "passwd", "missing"):
        result = calls[name]
        assert result.is_error, name
        assert "`references[0]`" in result.content[0].text, (name, result.content[0].text)
        assert result.structured_content["error"]["violations"][0]["field"] == "references[0]"
    assert "outside the directories" in calls["outside"].content[0].text
    assert "outside the directories" in calls["escape"].content[0].text
    assert str(reference_dir) in calls["outside"].content[0].text
    inside_result = calls["inside"]
    assert not inside_result.is_error, inside_result.content[0].text
    (use,) = inside_result.structured_content["references"]
    assert use["usage"] == "original" and use["size"] == "64x48"
    assert hashlib.sha256(
        inside_bytes
    ).hexdigest()  # the file itself was sent; its size is what the model saw


def test_no_listed_directory_means_no_paths(tmp_path):
    ref = tmp_path / "ref.png"
    _png(ref)
    with start_server(tmp_path / "srv", http=True) as srv:

        async def scenario():
            async with http(srv.http_base, key=None) as client:
                return await client.call_tool(
                    "edit_image", {"prompt": "brighter", "images": [str(ref)]}
                )

        result = run(scenario)
    assert result.is_error
    text = result.content[0].text
    assert "`images[0]`" in text and "reads no files" in text and "--mcp-reference-dir" in text


def test_edit_with_a_data_url_and_an_image_id(server, reference_dir):
    data = _png(reference_dir / "edit.png", (96, 64))
    url = "data:image/png;base64," + base64.b64encode(data).decode()

    async def scenario():
        async with http(server.http_base, key=KEY) as client:
            first = await client.call_tool(
                "generate_image", {"prompt": "a boat", "size": "1024x1024"}
            )
            image_id = first.structured_content["images"][0]["id"]
            edit = await client.call_tool(
                "edit_image",
                {"prompt": "make it red", "images": [url, image_id], "size": "1024x1536"},
            )
            bad = await client.call_tool(
                "edit_image", {"prompt": "x", "images": ["data:image/png;base64,%%%"]}
            )
            return edit, bad

    edit, bad = run(scenario)
    assert not edit.is_error, edit.content[0].text
    uses = edit.structured_content["references"]
    assert [(u["index"], u["usage"], u["size"]) for u in uses] == [
        (0, "original", "96x64"),
        (1, "original", "1024x1024"),
    ]
    assert edit.structured_content["images"][0]["size"] == "1024x1536"
    assert "References: #1" in edit.content[0].text
    assert bad.is_error and "`images[0]`" in bad.content[0].text and "base64" in bad.content[0].text


def test_a_closed_stream_stops_the_call(server):
    """A legacy-era host that just drops the call's SSE stream (no
    notifications/cancelled): its codex runs are killed all the same."""
    rid = "mcp-closed-stream"
    headers = {**ACCEPT, "Authorization": f"Bearer {KEY}"}
    with httpx2.Client(base_url=server.http_base, headers=headers, timeout=30) as client:
        opened = client.post("/mcp", json=INIT)
        session = {
            "mcp-session-id": opened.headers["mcp-session-id"],
            "mcp-protocol-version": "2025-11-25",
        }
        client.post(
            "/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session
        )
        call = {
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
        with client.stream("POST", "/mcp", json=call, headers=session) as stream:
            assert stream.status_code == 200
            assert procs.wait_until(
                lambda: (
                    len(server.runs_of(rid)) == 2
                    and all(procs.running(r["child_pid"]) for r in server.runs_of(rid))
                ),
                timeout=20,
            )
        # Leaving the block closed the connection mid-stream.
    runs = server.runs_of(rid)
    assert procs.wait_until(lambda: procs.all_gone(runs), timeout=10), [
        r for r in runs if not procs.run_gone(r)
    ]


def test_images_over_the_inline_limit_are_links(tmp_path):
    with start_server(tmp_path, http=True, args=["--mcp-inline-max-bytes", "1000"]) as srv:

        async def scenario():
            async with http(srv.http_base, key=None) as client:
                made = await client.call_tool(
                    "generate_image", {"prompt": "a kite", "size": "1024x1024"}
                )
                entry = made.structured_content["images"][0]
                got = await client.read_resource(entry["uri"])
                listed = await client.list_resources()
                return made, got, listed

        made, got, listed = run(scenario)
    entry = made.structured_content["images"][0]
    assert not [c for c in made.content if isinstance(c, types.ImageContent)]
    assert [str(c.uri) for c in made.content if isinstance(c, types.ResourceLink)] == [entry["uri"]]
    assert not entry["inline"] and made.structured_content["links_only"] == [entry["id"]]
    assert "links only" in made.content[0].text and entry["byte_size"] > 1000
    data = base64.b64decode(got.contents[0].blob)
    assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    with Image.open(io.BytesIO(data)) as img:
        assert img.size == (1024, 1024)
    assert entry["uri"] in [str(r.uri) for r in listed.resources]


@pytest.mark.parametrize(
    "headers,status",
    [
        ({"Origin": "http://evil.example"}, 403),  # a page on another site (CSRF)
        ({"Origin": "null"}, 403),  # a sandboxed frame or a local file
        ({"Host": "evil.example"}, 421),  # DNS rebinding: the page's own name, now 127.0.0.1
    ],
)
def test_pages_are_refused_before_the_key_or_the_session(server, headers, status):
    # The MCP specification asks streamable HTTP servers to check Origin: /mcp
    # is a route of the shim's app, so the one Host/Origin guard answers first,
    # even with the right key.
    answer = httpx2.post(
        server.http_base + "/mcp",
        json=INIT,
        headers={**ACCEPT, "X-API-Key": KEY, **headers},
        timeout=30,
    )
    assert answer.status_code == status, answer.text[:300]
    assert "mcp-session-id" not in answer.headers
    assert "Access-Control-Allow-Origin" not in answer.headers
