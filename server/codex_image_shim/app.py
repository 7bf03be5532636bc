"""The HTTP side: aiohttp handlers that turn each request into one
ImageService call over gRPC (grpc.aio) and turn the answer back.

Routing comes from `routes.build()` (the proto's HTTP annotations); every RPC
has the grpc-gateway default treatment (path variables and query into the
request message, the response message as JSON, server streams as NDJSON),
and three RPCs get the plugin contract on top: Generate (adapter), Health
(open `/healthz`) and GetImageFile (raw bytes streamed to the socket).

Disconnect means cancel: the aiohttp server runs with handler_cancellation,
so a closed client socket cancels the handler task, and every handler
cancels its gRPC call on the way out.
"""
from __future__ import annotations

import asyncio
import json
import logging

import grpc
from aiohttp import http_exceptions, web, web_protocol
from codex_image_server.grpc_api import auth
from codeximage.v1 import image_service_pb2 as pb
from codeximage.v1 import image_service_pb2_grpc as pb_grpc
from google.protobuf import json_format, message_factory

from . import access_log, adapter, errors, jsonmap, openapi, routes

log = logging.getLogger("codex_image_shim")

NDJSON = "application/x-ndjson"
JSON = "application/json"
OPENAPI_PATH = "/v1/openapi.json"
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Content-Length, Content-Type, ETag, Retry-After, X-Request-Id",
}
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, HEAD, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Accept, Authorization, X-API-Key",
    "Access-Control-Max-Age": "600",
}
UNARY_TIMEOUT_S = 60.0
ACCEPTED_ENCODINGS = ("", "identity", "gzip", "x-gzip", "deflate")
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}


def _dumps(body) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def json_response(body, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(body=_dumps(body), status=status, reason=errors.REASONS.get(status),
                        content_type=JSON, headers=headers)


def error_response(status, http_status: int, headers: dict | None = None) -> web.Response:
    headers = dict(headers or {})
    retry = errors.retry_after_s(status)
    if retry is not None:
        headers["Retry-After"] = str(retry)
    if http_status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="codex-image-server"'  # RFC 9110: 401 names its scheme
    return json_response(errors.error_body(status, http_status), http_status, headers)


def origin(request: web.Request) -> str:
    """The caller's own origin, so `data[].url` works for it as is."""
    return f"{request.scheme}://{request.host}"


def wants_stream(request: web.Request) -> bool:
    if request.query.get("stream", "").lower() in ("1", "true", "yes"):
        return True
    return any(NDJSON in part for part in request.headers.getall("Accept", []))


class Shim:
    def __init__(self, grpc_target: str, settings):
        self.settings = settings
        self.grpc_target = grpc_target
        self.routes = routes.build()
        self.openapi = openapi.document(self.routes)
        self.channel = None
        self.stub = None
        self._special = {"Generate": self._generate, "Health": self._health, "GetImageFile": self._image_file}

    async def open(self) -> None:
        # Large enough for a request carrying every reference the server allows.
        limit = max(self.settings.http_max_body_bytes, 128 * 1024 * 1024)
        self.channel = grpc.aio.insecure_channel(self.grpc_target, options=[
            ("grpc.max_send_message_length", limit), ("grpc.max_receive_message_length", limit)])
        self.stub = pb_grpc.ImageServiceStub(self.channel)

    async def close(self) -> None:
        if self.channel is not None:
            await self.channel.close(grace=None)

    def application(self) -> web.Application:
        app = web.Application()
        app.on_response_prepare.append(self._add_cors)
        app.on_response_prepare.append(access_log.add_request_id)
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app

    @staticmethod
    async def _add_cors(request, response) -> None:
        for key, value in CORS_HEADERS.items():
            response.headers.setdefault(key, value)

    # -- dispatch -----------------------------------------------------------

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        try:
            if request.method == "OPTIONS":
                return web.Response(status=204, headers=PREFLIGHT_HEADERS)
            if request.path == OPENAPI_PATH:
                return await self._openapi(request)
            route, found = routes.resolve(self.routes, request.method, request.path)
            if route is None:
                if found:
                    raise errors.method_not_allowed(request.method, request.path, found)
                raise errors.not_found_route(request.path)
            if route.rpc != "Health":
                self.check_key(request)
            handler = self._special.get(route.rpc, self._generic)
            return await handler(request, route, found)
        except errors.ShimError as exc:
            return error_response(exc.status, exc.http_status, exc.headers)
        except grpc.RpcError as exc:
            status = errors.status_of_rpc_error(exc)
            return error_response(status, errors.http_status_of(status))
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception as exc:  # noqa: BLE001 - never a stack trace to the caller
            # The type only: an exception's text may quote the caller's bytes.
            log.error("shim handler crashed: %s", type(exc).__name__)
            error = errors.ShimError(grpc.StatusCode.INTERNAL, "INTERNAL", "internal error in the HTTP shim")
            return error_response(error.status, 500)

    def metadata(self, request: web.Request) -> tuple:
        """The caller's key, forwarded for the gRPC server to check. A value
        gRPC metadata cannot carry (not printable ASCII) is no key at all."""
        md = []
        for header, key in (("X-API-Key", "x-api-key"), ("Authorization", "authorization")):
            value = request.headers.get(header)
            if value is not None and value.isascii() and value.isprintable():
                md.append((key, value))
        return tuple(md)

    def check_key(self, request: web.Request) -> None:
        """Before any byte of the body is read: a stranger's request is never parsed.
        The gRPC server checks again; this is the same check, not a second policy."""
        keys = self.settings.api_keys
        if keys and not auth.key_matches(auth.presented_key(self.metadata(request)), keys):
            raise errors.unauthenticated()

    def _request_message(self, route, request: web.Request, params: dict, body: dict | None = None):
        message = message_factory.GetMessageClass(route.method.input_type)()
        data = dict(body or {})
        data.update({k: v for k, v in request.query.items() if k != "stream"})
        data.update(params)
        try:
            return jsonmap.parse(data, message)
        except json_format.ParseError as exc:
            raise errors.wrong_type("bad request field", exc) from None

    async def read_body(self, request: web.Request) -> bytes:
        """The body, inflated when it came gzip or deflate (aiohttp inflates
        as it reads, in bounded chunks): the limit counts inflated bytes."""
        limit = self.settings.http_max_body_bytes
        encoding = request.headers.get("Content-Encoding", "").strip().lower()
        if encoding not in ACCEPTED_ENCODINGS:
            raise errors.unsupported_encoding(encoding)
        if request.content_length is not None and request.content_length > limit:
            raise errors.body_too_large(limit)
        chunks, total = [], 0
        try:
            async for chunk in request.content.iter_any():
                total += len(chunk)
                if total > limit:
                    raise errors.body_too_large(limit)
                chunks.append(chunk)
        except (http_exceptions.HttpProcessingError, web_protocol.RequestPayloadError):
            if encoding in ("", "identity"):
                raise errors.invalid_json("the request body could not be read (bad chunked encoding?)") from None
            raise errors.bad_encoding(encoding) from None
        return b"".join(chunks)

    def check_message_size(self, message) -> None:
        """What gRPC would refuse as RESOURCE_EXHAUSTED (a retryable 429) is a
        request too large: 413."""
        limit = self.settings.max_request_bytes
        if message.ByteSize() > limit:
            raise errors.body_too_large(limit, "the request, once decoded,")

    # -- the grpc-gateway default -------------------------------------------

    async def _generic(self, request, route, params):
        body = None
        if route.body:
            parsed = adapter.parse_body(await self.read_body(request))
            body = parsed if route.body == "*" else {route.body: parsed}
        message = self._request_message(route, request, params, body)
        self.check_message_size(message)
        rpc = getattr(self.stub, route.rpc)
        if route.server_streaming:
            return await self._ndjson(request, rpc(message, metadata=self.metadata(request)))
        response = await rpc(message, metadata=self.metadata(request), timeout=UNARY_TIMEOUT_S)
        return json_response(jsonmap.to_dict(response))

    async def _ndjson(self, request, call) -> web.StreamResponse:
        """grpc-gateway's rendering of a server stream: `{"result": ...}` per
        line as each message arrives; a failure after the first line becomes
        a final `{"error": <google.rpc.Status>}` line."""
        try:
            first = await call.read()  # a failure before any message is a plain HTTP error
            response = web.StreamResponse(headers={"Content-Type": NDJSON, "Cache-Control": "no-store",
                                                   "X-Content-Type-Options": "nosniff"})
            await response.prepare(request)
            message = first
            try:
                while message is not grpc.aio.EOF:
                    await response.write(_dumps({"result": jsonmap.to_dict(message)}) + b"\n")
                    message = await call.read()
            except grpc.RpcError as exc:
                await response.write(_dumps({"error": jsonmap.status_to_dict(errors.status_of_rpc_error(exc))})
                                     + b"\n")
            await response.write_eof()
            return response
        finally:
            call.cancel()

    # -- the plugin contract ------------------------------------------------

    async def _generate(self, request, route, params):
        raw = await self.read_body(request)
        # A body may hold 100 MB of base64: decode it off the event loop.
        message = await asyncio.to_thread(lambda: adapter.generate_request(adapter.parse_body(raw)))
        self.check_message_size(message)
        timeout = self.settings.generation_timeout_ms / 1000 + 60  # a backstop; the server has its own
        call = self.stub.Generate(message, metadata=self.metadata(request), timeout=timeout)
        if wants_stream(request):
            return await self._ndjson(request, call)
        try:
            images, summary = [], None
            async for event in call:
                kind = event.WhichOneof("event")
                if kind == "image":
                    images.append(jsonmap.to_dict(event.image))
                elif kind == "summary":
                    summary = jsonmap.to_dict(event.summary)
            if summary is None:
                raise errors.ShimError(grpc.StatusCode.INTERNAL, "INTERNAL", "generation ended without a summary")
            return json_response(adapter.aggregate(summary, images, origin(request)))
        finally:
            call.cancel()

    async def _health(self, request, route, params):
        # /healthz stays open: the shim runs in-process with the server and
        # may use a configured key for this one call.
        keys = self.settings.api_keys
        metadata = (("x-api-key", keys[0]),) if keys else ()
        response = await self.stub.Health(pb.HealthRequest(), metadata=metadata, timeout=UNARY_TIMEOUT_S)
        status, body = adapter.health(jsonmap.to_dict(response))
        return json_response(body, status)

    @staticmethod
    def _file_headers(image_id: str, content_type: str, sha256: str) -> dict:
        ext = _EXTENSIONS.get(content_type, "bin")
        return {"Content-Type": content_type or "application/octet-stream", "ETag": f'"{sha256}"',
                "Content-Disposition": f'inline; filename="{image_id}.{ext}"',
                "Cache-Control": "private, max-age=31536000, immutable",
                "X-Content-Type-Options": "nosniff"}

    @staticmethod
    def _not_modified(request, sha256: str) -> bool:
        wanted = request.headers.get("If-None-Match", "")
        return bool(wanted) and (wanted.strip() == "*" or f'"{sha256}"' in [t.strip() for t in wanted.split(",")])

    async def _image_file(self, request, route, params):
        message = self._request_message(route, request, params)
        md = self.metadata(request)
        if request.method == "HEAD":  # metadata only: no bytes are read
            image = (await self.stub.GetImage(pb.GetImageRequest(image_id=message.image_id), metadata=md,
                                              timeout=UNARY_TIMEOUT_S)).image
            response = web.StreamResponse(headers=self._file_headers(image.id, image.mime_type, image.sha256))
            response.content_length = image.byte_size
            await response.prepare(request)
            await response.write_eof()
            return response
        call = self.stub.GetImageFile(message, metadata=md)
        try:
            first = await call.read()
            if first is grpc.aio.EOF:
                raise errors.ShimError(grpc.StatusCode.INTERNAL, "INTERNAL", "the image stream was empty")
            headers = self._file_headers(message.image_id, first.content_type, first.sha256)
            if self._not_modified(request, first.sha256):
                return web.Response(status=304, headers={"ETag": headers["ETag"]})
            response = web.StreamResponse(headers=headers)
            response.content_length = first.total_size
            await response.prepare(request)
            chunk = first
            try:
                while chunk is not grpc.aio.EOF:
                    await response.write(chunk.data)  # waits for the socket to drain: no whole-file buffer
                    chunk = await call.read()
            except grpc.RpcError as exc:
                # Headers are gone already: cut the connection so the short body shows.
                log.warning("image stream failed mid-way: %s", exc.code())
                if request.transport is not None:
                    request.transport.abort()
                return response
            await response.write_eof()
            return response
        finally:
            call.cancel()

    async def _openapi(self, request):
        if request.method not in ("GET", "HEAD"):
            raise errors.method_not_allowed(request.method, request.path, ("GET", "HEAD"))
        if self.settings.api_keys:
            # /v1/* needs the key; the gRPC server is the one that checks it.
            await self.stub.GetCapabilities(pb.GetCapabilitiesRequest(), metadata=self.metadata(request),
                                            timeout=UNARY_TIMEOUT_S)
        return json_response(self.openapi)
