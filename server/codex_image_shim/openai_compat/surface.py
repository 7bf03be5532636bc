"""Routes of the OpenAI surface, mounted by the shim before its own table
(`POST /v1/images/generations` would otherwise be a 405 of GetImage).

The service is reached only through `_generate` (the dataplane's Generate
handler, the one every surface calls: its validation and errors), with the
caller the shim's one key check found. A client that goes away cancels the
handler, which iterates the stream itself: the generation is cancelled at
once, and codex killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import grpc
from aiohttp import web
from codex_image_server.errors import ServiceError
from codex_image_server.runtime.logs import log
from codeximage.v1 import image_service_pb2 as pb

from .. import adapter, errors as shim_errors
from . import answers, errors, fields

GENERATIONS = "/v1/images/generations"
EDITS = "/v1/images/edits"
MODELS = "/v1/models"
IGNORED_HEADER = "X-Codex-Image-Ignored"


def _json(body, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        reason=shim_errors.REASONS.get(status),
        content_type="application/json",
        headers=headers,
    )


def _sse(event: dict) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n".encode()


class OpenAISurface:
    def __init__(self, shim):
        self._shim = shim  # its handlers, body limit, key check and file locations

    @staticmethod
    def owns(path: str) -> bool:
        return path in (GENERATIONS, EDITS, MODELS) or path.startswith(MODELS + "/")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            if request.path == MODELS:
                self._allow(request, "GET")
                return await self._models(request)
            if request.path.startswith(MODELS + "/"):
                self._allow(request, "GET")
                return await self._model(request, request.path[len(MODELS) + 1 :])
            self._allow(request, "POST")
            if request.path == GENERATIONS:
                # Text only: its limit is the prompt's, not the images'.
                call = fields.to_call(
                    await self._json_body(request, self._shim.settings.http_max_text_body_bytes)
                )
                return await self._answer(request, call, "image_generation")
            call = await self._edit_call(request)
            return await self._answer(request, call, "image_edit")
        except (errors.OpenAIError, shim_errors.ShimError, ServiceError) as exc:
            return self.error_response(exc)
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception as exc:  # noqa: BLE001 - never a stack trace to the caller
            log(
                "http.handler_crashed",
                level="error",
                surface="openai",
                error_type=type(exc).__name__,
            )
            return self.error_response(
                shim_errors.ShimError(
                    grpc.StatusCode.INTERNAL, "INTERNAL", "internal error in the OpenAI surface"
                )
            )

    @staticmethod
    def error_response(exc: Exception) -> web.Response:
        """Any error with a status, in OpenAI's shape."""
        body, status, headers = errors.of_exception(exc)
        return _json(body, status, headers)

    @staticmethod
    def _allow(request: web.Request, method: str) -> None:
        if request.method != method:
            raise shim_errors.method_not_allowed(request.method, request.path, (method,))

    # -- the one seam to the service ------------------------------------------

    def _generate(self, request: web.Request, message: fields.WithImages):
        """The Generate stream; close it (aclosing) to cancel."""
        # The history records which surface asked: this one is "openai".
        return self._shim.handlers.generate(self._shim.caller(request, "openai"), message)

    # -- requests -------------------------------------------------------------

    async def _json_body(self, request: web.Request, limit: int | None = None) -> dict:
        # An edit's body may hold 80 MB of base64: parsed off the event loop,
        # the bytes let go before the parse (adapter.read_json).
        return await asyncio.to_thread(
            adapter.read_json, await self._shim.read_body(request, limit)
        )

    async def _edit_call(self, request: web.Request) -> fields.Call:
        if request.content_type == "multipart/form-data":
            data, images = await self._multipart(request)
            return fields.to_call(data, images)
        data = await self._json_body(request)
        images = await asyncio.to_thread(fields.json_images, data)
        return fields.to_call(data, images)

    async def _multipart(self, request: web.Request) -> tuple[dict, list[tuple[bytes, str]]]:
        """Text fields and `image` / `image[]` files, within the shim's body limit."""
        data: dict = {}
        images: list[tuple[bytes, str]] = []
        try:
            parts = await self._shim.read_parts(request)
        except (ValueError, AssertionError, AttributeError) as exc:
            raise errors.OpenAIError(
                f"the multipart body is malformed: {type(exc).__name__}", None, "invalid_multipart"
            ) from None
        for name, headers, raw in parts:
            if name in ("image", "image[]"):
                images.append((raw, headers.get("Content-Type", "")))  # bytes-like, as over gRPC
            elif name == "mask":
                data["mask"] = "file"
            elif name:
                data[name] = raw.decode("utf-8", "replace")
        if not images:
            raise errors.OpenAIError(
                "an edit needs at least one `image` file", "image", "missing_image"
            )
        return data, images

    # -- answers --------------------------------------------------------------

    async def _answer(
        self, request: web.Request, call: fields.Call, kind: str
    ) -> web.StreamResponse:
        headers = {IGNORED_HEADER: ", ".join(call.ignored)} if call.ignored else {}
        if call.stream:
            return await self._stream(request, call, kind, headers)
        images: list[pb.Image] = []
        async with contextlib.aclosing(self._generate(request, call.generate_request())) as stream:
            async for event in stream:
                if event.WhichOneof("event") == "image":
                    images.append(event.image)
        images.sort(key=lambda img: img.index)
        files: list[bytes | None] = [None] * len(images)
        if call.response_format == "b64_json":
            files = list(await asyncio.gather(*(self._read(img) for img in images)))
        return _json(
            answers.response(images, files, call.request, origin(request)), headers=headers
        )

    async def _stream(self, request, call, kind, headers) -> web.StreamResponse:
        """Server-sent events: one `<kind>.completed` per image as it lands.
        Codex makes no partial images, so no `partial_image` events come."""
        async with contextlib.aclosing(self._generate(request, call.generate_request())) as stream:
            first = await anext(stream, None)  # a failure before any event is a plain HTTP error
            response = web.StreamResponse(
                headers={
                    "Content-Type": "text/event-stream",
                    "Cache-Control": "no-store",
                    **headers,
                }
            )
            await response.prepare(request)
            event = first
            try:
                while event is not None:
                    if event.WhichOneof("event") == "image":
                        data = await self._read(event.image)
                        await response.write(
                            _sse(answers.completed_event(kind, event.image, data, call.request))
                        )
                    event = await anext(stream, None)
            except Exception as exc:  # noqa: BLE001 - the stream's last event says it, never a trace
                body, _, _ = errors.of_exception(exc)
                await response.write(_sse({"type": "error", **body}))
            await response.write_eof()
            return response

    async def _read(self, image: pb.Image) -> bytes:
        path = self._shim.file_path(image.id, image.mime_type)
        return await asyncio.to_thread(path.read_bytes)

    # -- models ---------------------------------------------------------------

    @staticmethod
    def _model_entry(name: str) -> dict:
        return {"id": name, "object": "model", "created": 0, "owned_by": "codex-image-server"}

    async def _models(self, request):
        self._shim.check_key(request)
        return _json({"object": "list", "data": [self._model_entry(m) for m in fields.MODELS]})

    async def _model(self, request, name: str):
        self._shim.check_key(request)
        if not fields.served(name):
            raise errors.OpenAIError(
                f"model {name!r} is not served here",
                "model",
                "model_not_found",
                http_status=404,
                grpc_code=grpc.StatusCode.NOT_FOUND,
            )
        return _json(self._model_entry(name))


def origin(request: web.Request) -> str:
    """The caller's own origin, so `url` answers work for it as is."""
    return f"{request.scheme}://{request.host}"
