"""The MCP tools' backend on the server: the service in-process, through the
shim's channel (the servicer's own auth, validation and errors, like the
OpenAI surface), with the calling HTTP request's key and the surface "mcp".
References reach Generate beside the message (WithImages), never copied
into it; stored images are read from where the store keeps them."""
from __future__ import annotations

import asyncio

from codex_image_client.mcp.backend import PathPolicy
from codex_image_server.grpc_api.convert import WithImages
from codeximage.v1 import image_service_pb2 as pb


class InProcessBackend:
    def __init__(self, shim, metadata: tuple, policy: PathPolicy, inline_max_bytes: int,
                 abandoned: asyncio.Event | None):
        self._shim = shim
        self._metadata = metadata
        self.policy = policy
        self.inline_max_bytes = inline_max_bytes
        self.abandoned = abandoned

    async def capabilities(self) -> pb.GetCapabilitiesResponse:
        return await self._shim.channel.unary("GetCapabilities", pb.GetCapabilitiesRequest(), self._metadata)

    def generate(self, request: pb.GenerateRequest, images: list[bytes]):
        message = WithImages(request, list(images))
        images.clear()  # the call holds them now, and lets them go once they are on disk
        return self._shim.channel.stream("Generate", message, self._metadata)

    async def list_images(self, request: pb.ListImagesRequest) -> pb.ListImagesResponse:
        return await self._shim.channel.unary("ListImages", request, self._metadata)

    async def get_image(self, image_id: str) -> pb.Image:
        response = await self._shim.channel.unary("GetImage", pb.GetImageRequest(image_id=image_id), self._metadata)
        return response.image

    async def image_bytes(self, image: pb.Image) -> bytes:
        # Off the loop: with an object store the first read downloads the file.
        path = await asyncio.to_thread(self._shim.file_path, image.id, image.mime_type)
        return await asyncio.to_thread(path.read_bytes)
