"""The MCP tools' backend on the server: the dataplane's handlers, called
with the Caller the shim's one key check found for the calling HTTP request
(surface "mcp"), as every surface calls them. References reach Generate
beside the message (WithImages), never copied into it; stored images are
read from where the store keeps them.

The tools (codex_image_client.mcp, shared with the stdio bridge over gRPC)
read a failure as a grpc.RpcError with the rich status; a ServiceError is
handed to them as one (StatusError), its status the very google.rpc.Status
the gRPC port and the HTTP shim give."""

from __future__ import annotations

import asyncio
import contextlib
import functools

import grpc
from codex_image_client.mcp.backend import PathPolicy
from codex_image_server.dataplane.convert import WithImages
from codex_image_server.dataplane.service import Caller
from codex_image_server.errors import ServiceError
from codeximage.v1 import image_service_pb2 as pb
from google.rpc import status_pb2

from .. import errors

_DETAILS_KEY = "grpc-status-details-bin"


class StatusError(grpc.RpcError):
    """A ServiceError in the form the MCP tools read every failure in."""

    def __init__(self, status: status_pb2.Status):
        super().__init__(status.message)
        self._status = status

    def code(self) -> grpc.StatusCode:
        return next(
            (c for c in grpc.StatusCode if c.value[0] == self._status.code), grpc.StatusCode.UNKNOWN
        )

    def details(self) -> str:
        return self._status.message

    def trailing_metadata(self):
        return ((_DETAILS_KEY, self._status.SerializeToString()),)


def _as_status_error(method):
    @functools.wraps(method)
    async def wrapper(*args, **kwargs):
        try:
            return await method(*args, **kwargs)
        except ServiceError as exc:
            raise StatusError(errors.status_of(exc)) from None

    return wrapper


class HandlersBackend:
    def __init__(
        self,
        shim,
        caller: Caller,
        policy: PathPolicy,
        inline_max_bytes: int,
        abandoned: asyncio.Event | None,
    ):
        self._handlers = shim.handlers
        self._file_path = shim.file_path
        self._caller = caller
        self.policy = policy
        self.inline_max_bytes = inline_max_bytes
        self.abandoned = abandoned

    @_as_status_error
    async def capabilities(self) -> pb.GetCapabilitiesResponse:
        return await self._handlers.get_capabilities(self._caller)

    async def generate(self, request: pb.GenerateRequest, images: list[bytes]):
        message = WithImages(request, list(images))
        images.clear()  # the call holds them now, and lets them go once they are on disk
        del request
        try:
            async with contextlib.aclosing(
                self._handlers.generate(self._caller, message)
            ) as stream:
                del message
                async for event in stream:
                    yield event
        except ServiceError as exc:
            raise StatusError(errors.status_of(exc)) from None

    @_as_status_error
    async def list_images(self, request: pb.ListImagesRequest) -> pb.ListImagesResponse:
        return await self._handlers.list_images(self._caller, request)

    @_as_status_error
    async def get_image(self, image_id: str) -> pb.Image:
        return (
            await self._handlers.get_image(self._caller, pb.GetImageRequest(image_id=image_id))
        ).image

    async def image_bytes(self, image: pb.Image) -> bytes:
        # Off the loop: with an object store the first read downloads the file.
        path = await asyncio.to_thread(self._file_path, image.id, image.mime_type)
        return await asyncio.to_thread(path.read_bytes)
