"""The HTTP side: aiohttp handlers that turn each request into one call of
the dataplane's handlers (dataplane/handlers.py), the very ones the gRPC
servicer calls, on the same event loop: the key checked once into a Caller,
the JSON turned into the request message, the answer turned back, a
ServiceError mapped the one HTTP way (errors.py).

Routing comes from `routes.build()` (the proto's HTTP annotations); every RPC
has the grpc-gateway default treatment (path variables and query into the
request message, the response message as JSON, server streams as NDJSON),
and three RPCs get the plugin contract on top: Generate (adapter), Health
(open `/healthz`) and GetImageFile (raw bytes streamed to the socket).

Disconnect means cancel: the aiohttp server runs with handler_cancellation,
so a closed client socket cancels the handler task, which iterates the
Generate stream itself: the generation is cancelled at once (and so the
codex processes).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
from pathlib import Path

import grpc
from aiohttp import hdrs, web
from codex_image_server.dataplane import frozen
from codex_image_server.dataplane.handlers import Handlers
from codex_image_server.dataplane.service import Caller
from codex_image_server.errors import ServiceError
from codex_image_server.runtime.idle import IdleTimer, reset
from codex_image_server.runtime.logs import log
from codex_image_server.team import auth
from codex_image_server.team.keys import ApiKey
from google.protobuf import json_format, message_factory

from . import access_log, adapter, body as body_reader, console, errors, jsonmap, openapi, routes
from .guard import Guard
from .mcp.surface import PATH as MCP_PATH, McpSurface
from .openai_compat.surface import EDITS, OpenAISurface

NDJSON = "application/x-ndjson"
JSON = "application/json"
OPENAPI_PATH = "/v1/openapi.json"
METRICS_PATH = "/metrics"
SENDFILE_STEP = 1024 * 1024  # the idle timer is touched after each step
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}
_KEY = web.RequestKey("codex_image.key", ApiKey)  # the request's key, once checked
_KEY_HEADERS = (("X-API-Key", "x-api-key"), ("Authorization", "authorization"))


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # one, not one per call


def _dumps(body) -> bytes:
    return _ENCODER.encode(body).encode()


def json_response(body, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(
        body=_dumps(body),
        status=status,
        reason=errors.REASONS.get(status),
        content_type=JSON,
        headers=headers,
    )


def message_json(message) -> bytes:
    """A response message as JSON bytes; a frozen one (capabilities) is encoded once."""
    return frozen.encoded(message, "json", lambda m: _dumps(jsonmap.to_dict(m)))


def message_response(message) -> web.Response:
    return web.Response(body=message_json(message), content_type=JSON)


def error_response(status, http_status: int, headers: dict | None = None) -> web.Response:
    headers = dict(headers or {})
    retry = errors.retry_after_s(status)
    if retry is not None:
        headers["Retry-After"] = str(retry)
    if http_status == 401:
        headers["WWW-Authenticate"] = (
            'Bearer realm="codex-image-server"'  # RFC 9110: 401 names its scheme
        )
    return json_response(errors.error_body(status, http_status), http_status, headers)


def origin(request: web.Request) -> str:
    """The caller's own origin, so `data[].url` works for it as is."""
    return f"{request.scheme}://{request.host}"


def wants_stream(request: web.Request) -> bool:
    if request.query.get("stream", "").lower() in ("1", "true", "yes"):
        return True
    return any(NDJSON in part for part in request.headers.getall("Accept", []))


class ImageFile(web.FileResponse):
    """aiohttp's FileResponse (sendfile, Content-Length, Range, HEAD) with our
    ETag (the sha256), sent in steps so a reader that stops reading is
    dropped after the idle timeout instead of holding the connection forever."""

    def __init__(self, path: Path, etag: str, idle_s: float, headers: dict):
        super().__init__(path, headers=headers)
        self._our_etag = etag
        self._idle_s = idle_s

    async def _sendfile(self, request, fobj, offset, count):
        self._headers[hdrs.ETAG] = self._our_etag
        writer = await super(web.FileResponse, self).prepare(request)
        transport = request.transport
        if transport is None:
            raise ConnectionResetError("Connection lost")
        loop = asyncio.get_running_loop()
        # On idle the timer cancels this task: loop.sendfile cleans up its
        # hold on the socket first, then the connection is reset.
        idle = IdleTimer(self._idle_s, "http")
        try:
            with idle:
                while count > 0:
                    step = min(count, SENDFILE_STEP)
                    with idle.waiting():
                        await loop.sendfile(transport, fobj, offset, step)
                    offset, count = offset + step, count - step
        except asyncio.CancelledError:
            if idle.fired:
                reset(transport)
            raise
        await super(web.FileResponse, self).write_eof()
        return writer


def _is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


class Shim:
    def __init__(self, handlers: Handlers, settings, *, metrics_registry=None):
        self.settings = settings
        self.metrics_registry = metrics_registry
        self.handlers = handlers
        self.keyring = handlers.keyring
        self.file_path = (
            handlers.service.store.file_path
        )  # (image id, mime type) -> where its bytes lie
        self.routes = routes.build()
        self.openapi = openapi.document(self.routes)
        self._openapi_body = _dumps(self.openapi)
        self._special = {
            "Generate": self._generate,
            "Health": self._health,
            "GetImageFile": self._image_file,
        }
        self._health_json: dict[tuple[bytes, bool], tuple[int, bytes]] = {}
        # Literal paths (no variables) resolved once: the hot GETs skip the regexes.
        self._literal = {
            (m, r.template): r
            for r in self.routes
            if not r.variables
            for m in ((r.http_method, "HEAD") if r.http_method == "GET" else (r.http_method,))
        }
        self._message_classes = {
            r.rpc: message_factory.GetMessageClass(r.method.input_type) for r in self.routes
        }
        self.openai = OpenAISurface(self)
        # Host, Origin and body type, for every route (fixed.py asks it too).
        self.guard = Guard(
            getattr(settings, "allowed_hosts", ()),
            getattr(settings, "allowed_origins", ()),
            multipart_paths=(EDITS,),
        )
        self.mcp = McpSurface(self)

    def application(self) -> web.Application:
        # The guard is a middleware: it covers every route added to the app, now or later.
        app = web.Application(middlewares=[self._guarded])
        app.on_response_prepare.append(self._add_headers)
        console.mount(app)  # `/` and `/console/*`: static, ahead of the /v1 catch-all
        self.mcp.mount(
            app, self.dispatch
        )  # its own route, answered (and its errors mapped) by dispatch
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app

    @web.middleware
    async def _guarded(self, request: web.Request, handler) -> web.StreamResponse:
        refused = self.guard.refusal(request)
        if refused is not None:
            return error_response(refused.status, refused.http_status, refused.headers)
        return await handler(request)

    async def _add_headers(self, request, response) -> None:
        self.common_headers(request, response.headers)

    def common_headers(self, request: web.BaseRequest, headers) -> None:
        """CORS and the request id, on every response the app makes and on
        the front door's refusals (fixed.py writes the same for the fixed answers)."""
        self.guard.add_cors(request, headers)
        access_log.add_request_id(request, headers)

    # -- dispatch -----------------------------------------------------------

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        method, path = request.method, request.path
        try:
            route = self._literal.get((method, path))  # the hot GETs: one lookup
            found = {}
            if route is None:
                if method == "OPTIONS":  # the guard has let its origin through
                    return web.Response(status=204, headers=self.guard.preflight_headers(request))
                if path == OPENAPI_PATH:
                    return await self._openapi(request)
                if self.openai.owns(path):
                    return await self.openai.handle(request)  # its own error shape
                if path == MCP_PATH:
                    return await self.mcp.handle(request)  # checks the key first, as below
                if path == METRICS_PATH and self.metrics_registry is not None:
                    return await self._metrics(request)
                route, found = routes.resolve(self.routes, method, path)
            if route is None:
                if found:
                    raise errors.method_not_allowed(method, path, tuple(found))
                raise errors.not_found_route(path)
            # The key first, before anything is parsed (Health is open).
            caller = None if route.rpc == "Health" else self.caller(request)
            handler = self._special.get(route.rpc, self._generic)
            return await handler(request, route, found, caller)
        except errors.ShimError as exc:
            return error_response(exc.status, exc.http_status, exc.headers)
        except ServiceError as exc:
            status = errors.status_of(exc)
            return error_response(status, errors.http_status_of(status))
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception as exc:  # noqa: BLE001 - never a stack trace to the caller
            # The type only: an exception's text may quote the caller's bytes.
            log("http.handler_crashed", level="error", surface="v1", error_type=type(exc).__name__)
            error = errors.ShimError(
                grpc.StatusCode.INTERNAL, "INTERNAL", "internal error in the HTTP shim"
            )
            return error_response(error.status, 500)

    def key(self, request: web.BaseRequest) -> ApiKey:
        """The one key check (team/auth.py, as over gRPC), made once per
        request: the front door makes it before a body is read, and the
        route reuses its answer. A key value gRPC metadata could not carry
        (not printable ASCII) is no key at all, as over gRPC. Raises the
        UNAUTHENTICATED ServiceError."""
        key = request.get(_KEY)
        if key is None:
            pairs = [
                (name, value)
                for header, name in _KEY_HEADERS
                if (value := request.headers.get(header)) is not None
                and value.isascii()
                and value.isprintable()
            ]
            key = request[_KEY] = auth.check(pairs, self.keyring)
        return key

    def caller(self, request: web.BaseRequest, surface: str = "http") -> Caller:
        """Who calls, for the handlers; `surface` as the history records it."""
        return Caller(self.key(request), surface)

    def check_key(self, request: web.BaseRequest) -> None:
        """The key check, its refusal as this shim's error: made before any
        byte of the body is read, so a stranger's request is never parsed."""
        try:
            self.key(request)
        except ServiceError as exc:
            raise errors.of_service_error(exc) from None

    def _request_message(self, route, request: web.Request, params: dict, body: dict | None = None):
        message = self._message_classes[route.rpc]()
        if not body and not params and not request.query_string:
            return message  # nothing to parse (GET /v1/capabilities, /healthz)
        data = dict(body or {})
        data.update({k: v for k, v in request.query.items() if k != "stream"})
        data.update(params)
        try:
            return jsonmap.parse(data, message)
        except json_format.ParseError as exc:
            raise errors.wrong_type("bad request field", exc) from None

    async def read_body(self, request: web.Request, limit: int | None = None) -> bytearray:
        """The body, within the route's limit (by default this shim's) and
        the body timeout (body.read)."""
        return await body_reader.read(
            request,
            limit or self.settings.http_max_body_bytes,
            self.settings.http_body_timeout_ms / 1000,
        )

    async def read_parts(self, request: web.Request) -> list:
        """A multipart body's parts, within the same limit and timeout."""
        return await body_reader.read_parts(
            request, self.settings.http_max_body_bytes, self.settings.http_body_timeout_ms / 1000
        )

    def refusal(self, request: web.BaseRequest, exc: errors.ShimError) -> web.Response:
        """An error found before any route ran, in the shape of the surface
        the request was for, with the headers every answer carries."""
        if self.openai.owns(request.path):
            response = self.openai.error_response(exc)
        else:
            response = error_response(exc.status, exc.http_status, exc.headers)
        self.common_headers(request, response.headers)
        return response

    def check_message_size(self, message) -> None:
        """The gRPC port refuses a request this large (RESOURCE_EXHAUSTED, a
        retryable 429 there); over HTTP it is what it is, too large: 413."""
        limit = self.settings.max_request_bytes
        if message.ByteSize() > limit:
            raise errors.body_too_large(limit, "the request, once decoded,")

    # -- the grpc-gateway default -------------------------------------------

    async def _generic(self, request, route, params, caller):
        body = None
        if route.body:
            parsed = adapter.parse_body(await self.read_body(request))
            body = parsed if route.body == "*" else {route.body: parsed}
        message = self._request_message(route, request, params, body)
        if (
            body is not None
        ):  # a path and a query alone are far below the limit (aiohttp caps a line at 8 KiB)
            self.check_message_size(message)
        if route.server_streaming:
            return await self._ndjson(request, self.handlers.streams[route.rpc](caller, message))
        return message_response(await self.handlers.unary[route.rpc](caller, message))

    async def _ndjson(self, request, call) -> web.StreamResponse:
        """grpc-gateway's rendering of a server stream: `{"result": ...}` per
        line as each message arrives; a failure after the first line becomes
        a final `{"error": <google.rpc.Status>}` line."""
        async with contextlib.aclosing(call):
            # A failure before any message is a plain HTTP error.
            message = await anext(call, None)
            response = web.StreamResponse(
                headers={
                    "Content-Type": NDJSON,
                    "Cache-Control": "no-store",
                    "X-Content-Type-Options": "nosniff",
                }
            )
            await response.prepare(request)
            try:
                while message is not None:
                    await response.write(_dumps({"result": jsonmap.to_dict(message)}) + b"\n")
                    message = await anext(call, None)
            except Exception as exc:  # noqa: BLE001 - the stream's last line says it, never a trace
                await response.write(
                    _dumps({"error": jsonmap.status_to_dict(errors.status_of(exc))}) + b"\n"
                )
            await response.write_eof()
            return response

    # -- the plugin contract ------------------------------------------------

    async def _generate(self, request, route, params, caller):
        # Up to 100 MB of base64: parsed and decoded off the event loop, each
        # form let go as soon as the next one exists (see adapter.read_json).
        body = await self.read_body(request)
        message = await asyncio.to_thread(lambda: adapter.generate_request(adapter.read_json(body)))
        self.check_message_size(message)
        call = self.handlers.generate(caller, message)
        del message  # the call has it, and lets it go once the references are on disk
        if wants_stream(request):
            return await self._ndjson(request, call)
        async with contextlib.aclosing(call):
            images, summary = [], None
            async for event in call:
                kind = event.WhichOneof("event")
                if kind == "image":
                    images.append(jsonmap.to_dict(event.image))
                elif kind == "summary":
                    summary = jsonmap.to_dict(event.summary)
            if summary is None:
                raise errors.ShimError(
                    grpc.StatusCode.INTERNAL, "INTERNAL", "generation ended without a summary"
                )
            return json_response(adapter.aggregate(summary, images, origin(request)))

    async def _health(self, request, route, params, caller):
        status, body = await self.health_answer(request)
        return web.Response(body=body, status=status, content_type=JSON)

    def health_details_for(self, request: web.BaseRequest) -> bool:
        """Whether this /healthz caller sees the details (codex's path and
        version, CODEX_HOMEs, account names, slots): with a key the server
        accepts, or on a server without keys; others get status and readiness."""
        if not self.keyring.required:
            return True
        try:
            self.key(request)
        except ServiceError:
            return False
        return True

    async def health_answer(self, request: web.BaseRequest) -> tuple[int, bytes]:
        """/healthz's (status, JSON bytes) for this caller, from the Health handler as it is now."""
        detailed = self.health_details_for(request)
        response = await self.handlers.health()  # /healthz is open: no key
        # The answer changes only when readiness or slot use does (the
        # handler then hands out the same frozen message): its JSON is kept
        # by the message's wire bytes, encoded once per answer.
        wire = (frozen.wire(response), detailed)
        rendered = self._health_json.get(wire)
        if rendered is None:
            status, body = adapter.health(jsonmap.to_dict(response), detailed)
            if len(self._health_json) >= 64:
                self._health_json.clear()
            rendered = self._health_json[wire] = (status, _dumps(body))
        return rendered

    async def capabilities_answer(self, request: web.BaseRequest) -> tuple[int, bytes]:
        """GET /v1/capabilities' (status, JSON bytes): the handler's answer
        to this caller (its key checked), as `_generic` renders it."""
        message = await self.handlers.get_capabilities(self.caller(request))
        return 200, message_json(message)

    @staticmethod
    def _file_headers(image_id: str, content_type: str, sha256: str) -> dict:
        ext = _EXTENSIONS.get(content_type, "bin")
        return {
            "Content-Type": content_type or "application/octet-stream",
            "ETag": f'"{sha256}"',
            "Content-Disposition": f'inline; filename="{image_id}.{ext}"',
            "Cache-Control": "private, max-age=31536000, immutable",
            "X-Content-Type-Options": "nosniff",
        }

    @staticmethod
    def _not_modified(request, sha256: str) -> bool:
        wanted = request.headers.get("If-None-Match", "")
        return bool(wanted) and (
            wanted.strip() == "*" or f'"{sha256}"' in [t.strip() for t in wanted.split(",")]
        )

    async def _image_file(self, request, route, params, caller):
        """The image's record through the handlers (what this caller may
        see), then the bytes from disk to socket with sendfile."""
        message = self._request_message(route, request, params)
        image = await self.handlers.stored_image(caller, message.image_id)
        headers = self._file_headers(image.id, image.mime_type, image.sha256)
        if self._not_modified(request, image.sha256):
            return web.Response(status=304, headers={"ETag": headers["ETag"]})
        if request.method == "HEAD":  # metadata only: no bytes are read
            response = web.StreamResponse(headers=headers)
            response.content_length = image.byte_size
            await response.prepare(request)
            await response.write_eof()
            return response
        # Off the loop: with an object store the first read downloads the file.
        path = await asyncio.get_running_loop().run_in_executor(
            None, self.file_path, image.id, image.mime_type
        )
        return ImageFile(
            path, headers["ETag"], self.settings.download_idle_timeout_ms / 1000, headers
        )

    async def _openapi(self, request):
        if request.method not in ("GET", "HEAD"):
            raise errors.method_not_allowed(request.method, request.path, ("GET", "HEAD"))
        self.check_key(request)
        return web.Response(body=self._openapi_body, content_type=JSON)

    async def _metrics(self, request):
        """Prometheus text. Open from loopback (metrics_auth=remote), to all
        (never) or to nobody without a key (always)."""
        if request.method not in ("GET", "HEAD"):
            raise errors.method_not_allowed(request.method, request.path, ("GET", "HEAD"))
        mode = getattr(self.settings, "metrics_auth", "remote")
        if mode == "always" or (mode == "remote" and not _is_loopback(request.remote or "")):
            self.check_key(request)
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest  # noqa: PLC0415 - on scrape

        body = await asyncio.to_thread(generate_latest, self.metrics_registry)
        return web.Response(
            body=body, headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"}
        )
