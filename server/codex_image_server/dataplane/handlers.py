"""The handlers every surface calls, beside Service (MLServer's DataPlane,
KServe's dataplane.py): one method per RPC of ImageService and
google.longrunning.Operations, taking the Caller its surface authenticated
once and the request message, giving the response message (or, for
Generate, the stream of them); a refusal raises ServiceError.

A surface only authenticates, turns its wire format into the request
message (gRPC: the bytes; HTTP: the proto's JSON mapping), calls one of
these and maps ServiceError its one way (grpc_api/status.py,
codex_image_shim/errors.py). What belongs to a transport stays with it:
flow control, the download idle timer, chunking a file, noticing that a
caller went away (its task is cancelled; so is the generation, at once).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from codeximage.v1 import image_service_pb2 as pb
from google.longrunning import operations_proto_pb2 as lro
from google.protobuf import empty_pb2

from codex_image_server.dataplane import convert, frozen
from codex_image_server.dataplane.generation import BACKEND, MODEL
from codex_image_server.dataplane.operation_messages import (
    operation_message,
    request_id_of,
    timeout_s,
)
from codex_image_server.dataplane.service import Caller, Service
from codex_image_server.engine import versions
from codex_image_server.errors import Outcome
from codex_image_server.finishing import transparency
from codex_image_server.operations.runner import Operations, new_request_id, parse_filter
from codex_image_server.request import references, sizes
from codex_image_server.request.params import MAX_COUNT, OUTPUT_FORMATS, QUALITIES
from codex_image_server.settings import Settings
from codex_image_server.store import StoredImage
from codex_image_server.store.records import Query
from codex_image_server.team.history import now_ms
from codex_image_server.version import __version__

REFERENCE_MIME_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")


def capabilities(s: Settings, auth_required: bool) -> pb.GetCapabilitiesResponse:
    """Fixed for the server's life: built once (resolving presets is not free)."""
    return pb.GetCapabilitiesResponse(
        model=MODEL,
        backend=BACKEND,
        max_images=MAX_COUNT,
        output_formats=list(OUTPUT_FORMATS),
        qualities=list(QUALITIES),
        backgrounds=list(transparency.BACKGROUNDS),
        size_options=list(sizes.SIZE_OPTIONS),
        ratio_options=list(sizes.RATIO_OPTIONS),
        aspect_names=list(sizes.NAMED_ASPECTS),
        aspect_options=[
            pb.AspectOption(
                name=o.name, kind=o.kind, aliases=list(o.aliases), description=o.description
            )
            for o in sizes.aspect_options()
        ],
        fits=list(sizes.FITS),
        size_constraints=pb.SizeConstraints(
            custom_size=True,
            max_edge=sizes.MAX_EDGE,
            max_pixels=sizes.MAX_PIXELS,
            min_pixels=sizes.MIN_PIXELS,
            multiple_of=sizes.MULTIPLE,
            max_ratio=f"{sizes.MAX_RATIO}:1",
        ),
        high_resolution_presets=pb.HighResolutionPresets(
            **{
                name: "%dx%d" % sizes.resolve_preset(sizes.PRESETS["4K"], ratio)
                for name, ratio in sizes.NAMED_ASPECTS.items()
            }
        ),
        references=pb.ReferencePolicy(
            mode="original_image",
            max_images=s.max_references,
            max_bytes=s.max_reference_bytes,
            mime_types=list(REFERENCE_MIME_TYPES),
            max_originals=references.ORIGINALS_WITH_SHEET,
            overflow_mode="contact_sheet",
        ),
        auth_required=auth_required,
        generation_timeout_ms=s.generation_timeout_ms,
        presets=[
            pb.SizePreset(name=p.name, max_edge=p.max_edge, max_pixels=p.max_pixels)
            for p in sizes.PRESETS.values()
        ],
    )


class Handlers:
    """Async methods run on the event loop and must not block it; blocking
    work (SQLite, a file's first fetch) goes through the service's bounded pool."""

    def __init__(self, settings: Settings, service: Service, operations: Operations):
        self.settings = settings
        self.service = service
        self.keyring = service.keyring
        self.operations = operations
        self._blocking = service.blocking
        self._capabilities = frozen.freeze(capabilities(settings, service.keyring.required))
        self._health: tuple[tuple, pb.HealthResponse] | None = None  # (what it says, the answer)
        # The unary RPCs by name, for the surfaces that route by the proto (gRPC, /v1).
        self.unary: dict[str, Callable[[Caller, Any], Awaitable[Any]]] = {
            "GetCapabilities": self.get_capabilities,
            "Health": self.health,
            "GetImage": self.get_image,
            "ListImages": self.list_images,
            "DeleteImage": self.delete_image,
            "ListRequests": self.list_requests,
            "GetRequest": self.get_request,
            "SubmitGeneration": self.submit_generation,
            "GetOperation": self.get_operation,
            "ListOperations": self.list_operations,
            "CancelOperation": self.cancel_operation,
            "DeleteOperation": self.delete_operation,
            "WaitOperation": self.wait_operation,
        }
        self.streams: dict[str, Callable[[Caller, Any], AsyncGenerator[Any, None]]] = {
            "Generate": self.generate
        }

    def shut_down(self) -> None:
        self.service.shut_down()

    # -- Generate ---------------------------------------------------------------

    async def generate(
        self, caller: Caller, request: pb.GenerateRequest | convert.WithImages
    ) -> AsyncGenerator[pb.GenerateResponse, None]:
        """The Generate stream, its outcome sent to its webhook if it has one (a
        repeated request id is answered from the store by Service). Leaving it
        early (aclose, or the task cancelled) cancels the generation at once:
        codex is killed."""
        message = request.message if isinstance(request, convert.WithImages) else request
        request_id, webhook_url = message.request_id, message.webhook_url
        del message
        if webhook_url:
            await self._blocking.run(self.operations.check_webhook, webhook_url)
        params = convert.params(request)
        # The reference bytes now live in `params` alone: the message (and
        # any copy of them) goes now, not when the call ends.
        del request
        started, result, outcome, call = now_ms(), pb.GenerationResult(), Outcome(), None
        try:
            with outcome:
                call = await self.service.generate(params, caller)
                del params
                async with contextlib.aclosing(call.events()) as events:
                    async for event in events:
                        response = convert.event_message(event)
                        if webhook_url and response.HasField("image"):
                            result.images.append(response.image)
                        elif webhook_url and response.HasField("summary"):
                            result.summary.CopyFrom(response.summary)
                            request_id = response.summary.request_id
                        yield response
        finally:
            if call is not None:
                call.cancel("call ended")  # idempotent: a finished generation ignores it
            if webhook_url:
                self.operations.generate_ended(
                    request_id,
                    caller,
                    webhook_url,
                    None if outcome.error else result.SerializeToString(),
                    outcome.error,
                    started,
                )

    # -- answers about the server -----------------------------------------------

    async def get_capabilities(self, caller: Caller, request=None) -> pb.GetCapabilitiesResponse:
        if self._capabilities.auth_required == self.keyring.required:
            return self._capabilities
        # The keys file was reloaded: say whether a key is needed now.
        return capabilities(self.settings, self.keyring.required)

    async def health(self, caller: Caller | None = None, request=None) -> pb.HealthResponse:
        # The last probe's answer: a probe spawns codex, and Health must be
        # answered from the loop at once (a watcher keeps it fresh).
        service = self.service
        engine, slots_ = service.engine, service.slots
        ready = engine.readiness.cached() or await self._blocking.run(engine.readiness.get)
        pool = engine.accounts
        rows = pool.snapshot(cached=True) or await self._blocking.run(pool.snapshot)
        assert ready is not None and rows is not None  # only the cached ones can be missing
        slots = slots_.snapshot()
        facts = (ready, slots, rows, self.keyring.required)
        if self._health is not None and self._health[0] == facts:
            return self._health[1]  # unchanged: the same (frozen) answer, encoded once
        in_use, free, queued = slots
        accounts = pool.states_of(rows)
        answer = frozen.freeze(
            pb.HealthResponse(
                status="ok" if ready.ready else "unavailable",
                ready=ready.ready,
                backend=BACKEND,
                model=MODEL,
                auth_required=self.keyring.required,
                generation_timeout_ms=self.settings.generation_timeout_ms,
                codex=pb.CodexStatus(
                    found=ready.found,
                    path=ready.path,
                    version=ready.version,
                    logged_in=ready.logged_in,
                    custom_provider=ready.custom_provider,
                ),
                slots=pb.SlotStatus(
                    in_use=in_use,
                    free=free,
                    limit=slots_.limit,
                    queued=queued,
                    queue_limit=slots_.queue_limit,
                ),
                problem=ready.said,
                server_version=__version__,
                codex_version=ready.version_number,
                codex_version_tested=ready.version_tested,
                codex_tested_versions=versions.TESTED,
                accounts=[convert.account_message(a) for a in accounts],
            )
        )
        if self._health is not None:
            frozen.thaw(self._health[1])
        self._health = (facts, answer)
        return answer

    # -- images and the history ---------------------------------------------------

    async def stored_image(self, caller: Caller, image_id: str) -> StoredImage:
        return await self._blocking.run(self.service.get_image, image_id, caller)

    async def get_image(self, caller: Caller, request: pb.GetImageRequest) -> pb.GetImageResponse:
        return pb.GetImageResponse(
            image=convert.image_message(await self.stored_image(caller, request.image_id))
        )

    async def image_file(self, caller: Caller, request: pb.GetImageFileRequest):
        """(the image's record, where its bytes lie): the transport sends them its way."""
        record = await self.stored_image(caller, request.image_id)
        # The path may mean a fetch into the local cache (an object store): off the loop too.
        return record, await self._blocking.run(self.service.image_path, record)

    async def list_images(
        self, caller: Caller, request: pb.ListImagesRequest
    ) -> pb.ListImagesResponse:
        page = await self._blocking.run(self.service.list_images, convert.query(request), caller)
        return pb.ListImagesResponse(
            images=[convert.image_message(i) for i in page.items],
            next_page_token=page.next_page_token,
        )

    async def delete_image(
        self, caller: Caller, request: pb.DeleteImageRequest
    ) -> pb.DeleteImageResponse:
        await self._blocking.run(self.service.delete_image, request.image_id, caller)
        return pb.DeleteImageResponse()

    async def list_requests(
        self, caller: Caller, request: pb.ListRequestsRequest
    ) -> pb.ListRequestsResponse:
        page = await self._blocking.run(self.service.list_requests, convert.query(request), caller)
        return pb.ListRequestsResponse(
            requests=[convert.request_message(r) for r in page.items],
            next_page_token=page.next_page_token,
        )

    async def get_request(
        self, caller: Caller, request: pb.GetRequestRequest
    ) -> pb.GetRequestResponse:
        return convert.request_detail(
            await self._blocking.run(self.service.get_request, request.request_id, caller)
        )

    # -- operations -----------------------------------------------------------------

    def _submit(self, caller: Caller, request: pb.GenerateRequest) -> lro.Operation:
        if not request.request_id:
            request.request_id = new_request_id()
        record = self.operations.submit(
            request.SerializeToString(), convert.params(request), request.webhook_url, caller
        )
        return operation_message(*self.operations.get(record.request_id, caller))

    async def submit_generation(self, caller: Caller, request: pb.GenerateRequest) -> lro.Operation:
        return await self._blocking.run(self._submit, caller, request)

    async def get_operation(
        self, caller: Caller, request: lro.GetOperationRequest
    ) -> lro.Operation:
        request_id = request_id_of(request.name)
        return operation_message(*await self._blocking.run(self.operations.get, request_id, caller))

    async def list_operations(
        self, caller: Caller, request: lro.ListOperationsRequest
    ) -> lro.ListOperationsResponse:
        query = Query(
            page_size=request.page_size,
            page_token=request.page_token,
            status=parse_filter(request.filter),
        )
        page = await self._blocking.run(self.operations.list, query, caller)
        return lro.ListOperationsResponse(
            operations=[operation_message(r) for r in page.items],
            next_page_token=page.next_page_token,
        )

    async def cancel_operation(
        self, caller: Caller, request: lro.CancelOperationRequest
    ) -> empty_pb2.Empty:
        request_id = request_id_of(request.name)
        await self._blocking.run(self.operations.cancel, request_id, caller)
        return empty_pb2.Empty()

    async def delete_operation(
        self, caller: Caller, request: lro.DeleteOperationRequest
    ) -> empty_pb2.Empty:
        request_id = request_id_of(request.name)
        await self._blocking.run(self.operations.delete, request_id, caller)
        return empty_pb2.Empty()

    async def wait_operation(
        self, caller: Caller, request: lro.WaitOperationRequest
    ) -> lro.Operation:
        request_id, wait_s = request_id_of(request.name), timeout_s(request)
        return operation_message(*await self.operations.wait(request_id, wait_s, caller))
