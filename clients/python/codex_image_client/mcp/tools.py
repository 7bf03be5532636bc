"""What each tool does, over any Backend.

Every service call goes through the backend; every failure becomes a tool
error (render.error), so a bad value reaches the caller as the service's
own field error. A call whose caller goes away (its task cancelled by a
cancellation notification, or the backend's `abandoned` signal: the HTTP
stream closed) leaves the Generate stream, which cancels it: the server
kills every codex of the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable

import anyio
import grpc
from codeximage.v1 import image_service_pb2 as pb
from mcp import types
from mcp.shared.exceptions import MCPError

from .. import jsonout
from ..errors import from_rpc_error
from ..retry import not_running, not_running_hint
from . import arguments, references, render, schemas
from .backend import Backend

Report = Callable[[float, float | None, str | None], Awaitable[None]]
INVALID_PARAMS = -32602


async def definitions(backend: Backend, paths: str) -> list[types.Tool]:
    try:
        caps = await backend.capabilities()
    except grpc.RpcError:
        caps = None  # listed anyway: a call then says what is wrong (e.g. no server answers)
    return schemas.tools(caps, paths)


async def _read_if_small(backend: Backend, image: pb.Image) -> bytes | None:
    return await backend.image_bytes(image) if image.byte_size <= backend.inline_max_bytes else None


async def _generate(
    args: dict, backend: Backend, report: Report, field: str
) -> types.CallToolResult:
    request = arguments.generate_request(args)
    refs, images = await references.resolve(arguments.strings(args, field), field, backend)
    request.references.extend(refs)
    count = max(request.count, 1)
    # Two steps a candidate: its codex started, its image stored. Progress
    # only ever grows, as MCP requires.
    total, done = 2 * count, 0
    made: list[pb.Image] = []
    files: list[bytes | None] = []
    summary = None
    async with contextlib.aclosing(backend.generate(request, images)) as stream:
        del images
        async for event in stream:
            kind = event.WhichOneof("event")
            if kind == "progress" and event.progress.stage == pb.Progress.STAGE_CANDIDATE_STARTED:
                done += 1
                await report(
                    done,
                    total,
                    f"candidate {event.progress.candidate_index + 1} of {count}: codex started",
                )
            elif kind == "image":
                done += 1
                image = event.image
                made.append(image)
                files.append(await _read_if_small(backend, image))
                await report(
                    done,
                    total,
                    f"candidate {image.index + 1} of {count}: {image.width}x{image.height} "
                    f"{image.id}",
                )
            elif kind == "summary":
                summary = event.summary
    order = sorted(range(len(made)), key=lambda i: made[i].index)
    return render.images(
        [made[i] for i in order], [files[i] for i in order], backend.inline_max_bytes, summary
    )


async def _generate_image(args, backend, report):
    return await _generate(args, backend, report, "references")


async def _edit_image(args, backend, report):
    return await _generate(args, backend, report, "images")


async def _list_images(args, backend, report):
    page = await backend.list_images(arguments.list_request(args))
    entries = []
    for image in page.images:
        entry = render.facts(image, inline=False)
        entry.pop("inline")
        entry.update(prompt=image.prompt, create_time=image.create_time.ToJsonString())
        entries.append(entry)
    lines = [
        f"{e['id']}\t{e['create_time']}\t{e['size']}\t{e['mime_type']}\t"
        f"{' '.join(e['prompt'].split())[:80]}"
        for e in entries
    ]
    more = f"\nMore: pass page_token={page.next_page_token!r}." if page.next_page_token else ""
    text = f"{len(entries)} image{'s' if len(entries) != 1 else ''}" + (
        ":\n" + "\n".join(lines) if lines else "."
    )
    return render.data({"images": entries, "next_page_token": page.next_page_token}, text + more)


async def _get_image(args, backend, report):
    image = await backend.get_image(arguments.text(args, "image_id").strip())
    return render.images([image], [await _read_if_small(backend, image)], backend.inline_max_bytes)


async def _capabilities(args, backend, report):
    caps = jsonout.to_dict(await backend.capabilities())
    return render.data(caps, json.dumps(caps, indent=1))


HANDLERS = {
    schemas.GENERATE: _generate_image,
    schemas.EDIT: _edit_image,
    schemas.LIST: _list_images,
    schemas.GET: _get_image,
    schemas.CAPABILITIES: _capabilities,
}
# The service names an edit's images `references`; the tool calls them `images`.
_FIELD_NAMES = {schemas.EDIT: ("references", "images")}


# Argument names and required ones: the same whatever the capabilities.
_SCHEMAS = {tool.name: tool.input_schema for tool in schemas.tools(None, "")}


async def call(name: str, args: dict, backend: Backend, report: Report) -> types.CallToolResult:
    handler = HANDLERS.get(name)
    if handler is None:  # a protocol fault, not bad input to a tool
        raise MCPError(
            INVALID_PARAMS, f"unknown tool {name!r}; the tools are {', '.join(HANDLERS)}"
        )
    try:
        arguments.check_names(args, _SCHEMAS[name])
        return await _until_abandoned(handler(args, backend, report), backend.abandoned)
    except arguments.ArgumentError as exc:
        return render.error(name, exc)
    except grpc.RpcError as exc:
        error = from_rpc_error(exc)
        hint = not_running_hint(getattr(backend, "target", ""), error) if not_running(error) else ""
        return render.error(name, error, hint=hint, rename=_FIELD_NAMES.get(name))


async def _until_abandoned(work, abandoned: asyncio.Event | None):
    """`work`, cancelled when `abandoned` is set (the caller's stream closed)."""
    if abandoned is None:
        return await work
    result, error = None, None
    async with anyio.create_task_group() as group:

        async def watch():
            await abandoned.wait()
            group.cancel_scope.cancel()

        group.start_soon(watch)
        try:
            result = await work
        except Exception as exc:  # noqa: BLE001 - raised below, outside the group (not as an ExceptionGroup)
            error = exc
        group.cancel_scope.cancel()
    if error is not None:
        raise error
    if result is None:
        raise MCPError(-32800, "request abandoned: its stream closed")  # nobody reads this
    return result
