"""What the MCP tools need from a transport, and the gRPC backend the stdio
bridge uses.

A backend makes the service's calls for one MCP request. Every failure is a
grpc.RpcError carrying the service's rich status (a remote call's, or the
in-process channel's), so `errors.from_rpc_error` reads both alike.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Protocol

import grpc
from codeximage.v1 import image_service_pb2 as pb, image_service_pb2_grpc

# Larger images are returned as links only (render.py says why this figure).
DEFAULT_INLINE_MAX_BYTES = 3_750_000
# Where a stored image can be read: `codex-image://images/{id}`.
IMAGE_URI_PREFIX = "codex-image://images/"


@dataclasses.dataclass(frozen=True)
class PathPolicy:
    """Which reference files a caller may name. `roots` None: any file the
    process can read (stdio: the host's own user); a tuple: only files inside
    these directories (the `/mcp` route: what the operator listed, maybe none)."""

    roots: tuple[Path, ...] | None
    how_to_allow: str = ""  # what an operator does to allow a directory

    @classmethod
    def any(cls) -> PathPolicy:
        return cls(None)

    @classmethod
    def under(cls, dirs, how_to_allow: str) -> PathPolicy:
        return cls(tuple(Path(os.path.realpath(Path(d).expanduser())) for d in dirs), how_to_allow)


class Backend(Protocol):
    """The service's calls, for one MCP request."""

    policy: PathPolicy
    inline_max_bytes: int
    # Set when the MCP caller's HTTP stream went away mid-call (None: no such signal).
    abandoned: asyncio.Event | None

    async def capabilities(self) -> pb.GetCapabilitiesResponse: ...

    def generate(
        self, request: pb.GenerateRequest, images: list[bytes]
    ) -> AsyncGenerator[pb.GenerateResponse, None]:
        """The Generate stream; `images[i]` is `request.references[i]`'s bytes.
        Closing the iterator (aclosing) cancels the call, and with it codex."""
        ...

    async def list_images(self, request: pb.ListImagesRequest) -> pb.ListImagesResponse: ...

    async def get_image(self, image_id: str) -> pb.Image: ...

    async def image_bytes(self, image: pb.Image) -> bytes: ...


class GrpcBackend:
    """The service over a gRPC channel (grpc.aio), for `codex-image mcp`."""

    abandoned: asyncio.Event | None = (
        None  # a cancelled MCP request cancels its task, and so the call
    )

    def __init__(
        self,
        target: str,
        api_key: str | None,
        *,
        inline_max_bytes: int,
        policy: PathPolicy | None = None,
    ):
        self.target = target
        self.policy = policy or PathPolicy.any()
        self.inline_max_bytes = inline_max_bytes
        self._metadata = (("authorization", f"Bearer {api_key}"),) if api_key else ()
        self._channel: grpc.aio.Channel | None = None
        self._stub: image_service_pb2_grpc.ImageServiceStub | None = None

    @property
    def stub(self):
        # Made on first use: a grpc.aio channel belongs to the running loop.
        if self._stub is None:
            self._channel = grpc.aio.insecure_channel(
                self.target,
                options=[
                    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                    ("grpc.max_send_message_length", -1),
                ],
            )
            self._stub = image_service_pb2_grpc.ImageServiceStub(self._channel)
        return self._stub

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()

    async def capabilities(self) -> pb.GetCapabilitiesResponse:
        return await self.stub.GetCapabilities(
            pb.GetCapabilitiesRequest(), metadata=self._metadata, timeout=30
        )

    async def generate(
        self, request: pb.GenerateRequest, images: list[bytes]
    ) -> AsyncGenerator[pb.GenerateResponse, None]:
        for reference, data in zip(request.references, images, strict=True):
            reference.image = data
        images.clear()
        call = self.stub.Generate(request, metadata=self._metadata)
        del request
        try:
            async for response in call:
                yield response
        finally:
            call.cancel()  # a no-op once the stream ended; else the server kills codex

    async def list_images(self, request: pb.ListImagesRequest) -> pb.ListImagesResponse:
        return await self.stub.ListImages(request, metadata=self._metadata, timeout=30)

    async def get_image(self, image_id: str) -> pb.Image:
        response = await self.stub.GetImage(
            pb.GetImageRequest(image_id=image_id), metadata=self._metadata, timeout=30
        )
        return response.image

    async def image_bytes(self, image: pb.Image) -> bytes:
        chunks = []
        call = self.stub.GetImageFile(
            pb.GetImageFileRequest(image_id=image.id), metadata=self._metadata, timeout=120
        )
        async for chunk in call:
            chunks.append(chunk.data)
        return b"".join(chunks)
