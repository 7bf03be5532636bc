"""The SDK server (the official `mcp` package's low-level Server) that
serves the tools and the stored images as resources, over whichever
transport runs it. `backend_for(ctx)` gives the backend of one MCP request
(the /mcp route binds it to that HTTP request's key; stdio has one)."""

from __future__ import annotations

import base64
from collections.abc import Callable

import grpc
from codeximage.v1 import image_service_pb2 as pb
from mcp import types
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError

from ..errors import from_rpc_error
from ..version import __version__
from . import render, tools
from .backend import IMAGE_URI_PREFIX, Backend

RESOURCE_NOT_FOUND = -32002  # MCP's code for a resource that does not exist
RESOURCE_PAGE = 100
INSTRUCTIONS = (
    "codex-image makes images with the Codex CLI's image model: generate_image (exact sizes, 1-4 "
    "candidates, references, transparent backgrounds), edit_image, list_images, get_image, "
    "capabilities. "
    "Every stored image is also a resource, codex-image://images/{id}."
)


def build(backend_for: Callable[[ServerRequestContext], Backend], paths: str) -> Server:
    """`paths`: how this transport takes reference file paths, for the schemas."""

    async def list_tools(ctx, params) -> types.ListToolsResult:
        return types.ListToolsResult(tools=await tools.definitions(backend_for(ctx), paths))

    async def call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        return await tools.call(
            params.name, params.arguments or {}, backend_for(ctx), ctx.session.report_progress
        )

    async def list_resources(ctx, params) -> types.ListResourcesResult:
        backend = backend_for(ctx)
        cursor = params.cursor if params is not None else None
        page = await _protocol(backend.list_images(resource_page(cursor)))
        return types.ListResourcesResult(
            resources=[
                types.Resource(
                    uri=render.uri(i.id),
                    name=i.id,
                    mime_type=i.mime_type or None,
                    size=i.byte_size or None,
                    description=f"{i.width}x{i.height}",
                )
                for i in page.images
            ],
            next_cursor=page.next_page_token or None,
        )

    async def list_templates(ctx, params) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(
            resource_templates=[
                types.ResourceTemplate(
                    uri_template=IMAGE_URI_PREFIX + "{id}",
                    name="image",
                    description="a stored image's bytes, by id (img_ + 32 hex digits)",
                )
            ]
        )

    async def read_resource(
        ctx, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = str(params.uri)
        if not uri.startswith(IMAGE_URI_PREFIX):
            raise MCPError(
                RESOURCE_NOT_FOUND,
                f"no resource {uri}; images are {IMAGE_URI_PREFIX}{{id}}",
                {"uri": uri},
            )
        backend = backend_for(ctx)
        image = await _protocol(backend.get_image(uri[len(IMAGE_URI_PREFIX) :]), uri)
        data = await _protocol(backend.image_bytes(image), uri)
        return types.ReadResourceResult(
            contents=[
                types.BlobResourceContents(
                    uri=uri, mime_type=image.mime_type or None, blob=base64.b64encode(data).decode()
                )
            ]
        )

    return Server(
        "codex-image",
        version=__version__,
        title="codex-image-server",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
    )


def resource_page(cursor: str | None) -> pb.ListImagesRequest:
    return pb.ListImagesRequest(page_size=RESOURCE_PAGE, page_token=cursor or "")


async def _protocol(awaitable, uri: str = ""):
    """A resource request's failure as MCP protocol errors (resources have
    no isError): NOT_FOUND -> -32002; anything else names the status."""
    try:
        return await awaitable
    except grpc.RpcError as exc:
        error = from_rpc_error(exc)
        if error.code == grpc.StatusCode.NOT_FOUND:
            raise MCPError(
                RESOURCE_NOT_FOUND, f"no image at {uri}: {error.message}", {"uri": uri}
            ) from None
        raise MCPError(-32603, str(error).splitlines()[0]) from None
