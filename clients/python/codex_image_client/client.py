"""A small typed client over the generated ImageService stubs.

client = Client("127.0.0.1:17342", api_key=None, timeout=30)
for event in client.generate("a red fox", count=2):   # typed events
    ...
result = client.generate("a red fox").wait(on_event=print)
client.download(result.images[0].id, "fox.png")        # sha256 checked
for image in client.iter_images(prompt_contains="fox"):  # every page, newest first
    client.delete_image(image.id)
op = client.submit("a red fox", request_id="fox-1")     # detached: a long-running operation
images = operation_result(client.wait(op.name)).images  # docs/operations.md
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import mimetypes
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import grpc
from codeximage.v1 import image_service_pb2 as pb, image_service_pb2_grpc
from google.longrunning import operations_pb2_grpc, operations_proto_pb2 as lro
from google.protobuf import duration_pb2, timestamp_pb2

from . import events
from .errors import ClientError, from_rpc_error, from_status

DEFAULT_TARGET = "127.0.0.1:17342"


@dataclasses.dataclass(frozen=True)
class GenerateResult:
    images: list[pb.Image]
    summary: pb.GenerateSummary | None


class Generation:
    """One running Generate call: iterate it for typed events, `wait()` for the
    result, `cancel()` from any thread (the server then kills its codex runs)."""

    def __init__(self, call):
        self._call = call

    def __iter__(self) -> Iterator[events.Event]:
        try:
            for response in self._call:
                event = events.from_response(response)
                if event is not None:
                    yield event
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None

    def wait(self, on_event: Callable[[events.Event], None] | None = None) -> GenerateResult:
        images, summary = [], None
        for event in self:
            if on_event:
                on_event(event)
            if isinstance(event, events.ImageReady):
                images.append(event.image)
            elif isinstance(event, events.Summary):
                summary = event.summary
        return GenerateResult(images, summary)

    def cancel(self) -> None:
        self._call.cancel()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        # Leaving the block early must not leave codex running on the server.
        self._call.cancel()


def _timestamp(when: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    if when is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(when if when.tzinfo else when.replace(tzinfo=dt.UTC))
    return ts


def _filters(start_time, end_time, **rest) -> dict:
    """History filters as request fields; times may be datetimes (naive = UTC)."""
    return {
        **{k: v for k, v in rest.items() if v},
        **{k: _timestamp(v) for k, v in (("start_time", start_time), ("end_time", end_time)) if v},
    }


def _every_page(list_page, field: str, filters: dict):
    token = ""
    while True:
        page = list_page(page_token=token, **filters)
        yield from getattr(page, field)
        if not (token := page.next_page_token):
            return


def operation_name(name_or_id: str) -> str:
    """ "operations/ID" for an id or a name."""
    return name_or_id if name_or_id.startswith("operations/") else f"operations/{name_or_id}"


def operation_metadata(op: lro.Operation) -> pb.GenerationMetadata:
    meta = pb.GenerationMetadata()
    op.metadata.Unpack(meta)
    return meta


def operation_result(op: lro.Operation) -> pb.GenerationResult:
    """A done operation's images and summary; its error raised as ClientError."""
    if not op.done:
        raise ValueError(f"{op.name} is not done yet")
    if op.HasField("error"):
        raise from_status(op.error)
    result = pb.GenerationResult()
    op.response.Unpack(result)
    return result


def reference(
    image: bytes | str | os.PathLike, *, mime_type: str = "", label: str = ""
) -> pb.Reference:
    """A Reference from bytes or a file path (mime type guessed from the name)."""
    if isinstance(image, (bytes, bytearray)):
        return pb.Reference(image=bytes(image), mime_type=mime_type, label=label)
    path = Path(image)
    return pb.Reference(
        image=path.read_bytes(),
        label=label,
        mime_type=mime_type or mimetypes.guess_type(path.name)[0] or "",
    )


class Client:
    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        api_key: str | None = None,
        timeout: float | None = None,
        channel: grpc.Channel | None = None,
    ):
        """`timeout` (seconds) is the default deadline of every call except
        generate, whose runs can take minutes: give it its own `timeout`."""
        self.target = target
        self._channel = channel or grpc.insecure_channel(target)
        self._stub = image_service_pb2_grpc.ImageServiceStub(self._channel)
        self._operations = operations_pb2_grpc.OperationsStub(self._channel)
        self._metadata = (("authorization", f"Bearer {api_key}"),) if api_key else ()
        self._timeout = timeout

    def close(self) -> None:
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _unary(self, method, request, timeout):
        try:
            return method(
                request,
                timeout=timeout if timeout is not None else self._timeout,
                metadata=self._metadata,
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None

    def health(self, *, timeout: float | None = None) -> pb.HealthResponse:
        return self._unary(self._stub.Health, pb.HealthRequest(), timeout)

    def capabilities(self, *, timeout: float | None = None) -> pb.GetCapabilitiesResponse:
        return self._unary(self._stub.GetCapabilities, pb.GetCapabilitiesRequest(), timeout)

    def get_image(self, image_id: str, *, timeout: float | None = None) -> pb.Image:
        return self._unary(
            self._stub.GetImage, pb.GetImageRequest(image_id=image_id), timeout
        ).image

    def list_images(
        self,
        *,
        page_size: int = 0,
        page_token: str = "",
        start_time: dt.datetime | None = None,
        end_time: dt.datetime | None = None,
        request_id: str = "",
        key_name: str = "",
        prompt_contains: str = "",
        timeout: float | None = None,
    ) -> pb.ListImagesResponse:
        """One page of stored images, newest first; pass `next_page_token` on for the next."""
        request = pb.ListImagesRequest(
            page_size=page_size,
            page_token=page_token,
            **_filters(
                start_time,
                end_time,
                request_id=request_id,
                key_name=key_name,
                prompt_contains=prompt_contains,
            ),
        )
        return self._unary(self._stub.ListImages, request, timeout)

    def iter_images(self, **filters) -> Iterator[pb.Image]:
        """Every stored image matching the filters of `list_images`, page by page."""
        return _every_page(self.list_images, "images", filters)

    def delete_image(self, image_id: str, *, timeout: float | None = None) -> None:
        """Deletes the image's bytes and record; NOT_FOUND when it is not (or no longer) stored."""
        self._unary(self._stub.DeleteImage, pb.DeleteImageRequest(image_id=image_id), timeout)

    def list_requests(
        self,
        *,
        page_size: int = 0,
        page_token: str = "",
        start_time: dt.datetime | None = None,
        end_time: dt.datetime | None = None,
        request_id: str = "",
        key_name: str = "",
        status: str = "",
        prompt_contains: str = "",
        timeout: float | None = None,
    ) -> pb.ListRequestsResponse:
        """One page of the request history, newest first (failed, cancelled and refused too)."""
        request = pb.ListRequestsRequest(
            page_size=page_size,
            page_token=page_token,
            **_filters(
                start_time,
                end_time,
                request_id=request_id,
                key_name=key_name,
                status=status,
                prompt_contains=prompt_contains,
            ),
        )
        return self._unary(self._stub.ListRequests, request, timeout)

    def iter_requests(self, **filters) -> Iterator[pb.RequestRecord]:
        """Every request matching the filters of `list_requests`, page by page."""
        return _every_page(self.list_requests, "requests", filters)

    def get_request(
        self, request_id: str, *, timeout: float | None = None
    ) -> pb.GetRequestResponse:
        """A request's parameters, outcome, durations, accounts, images and its key's usage."""
        return self._unary(
            self._stub.GetRequest, pb.GetRequestRequest(request_id=request_id), timeout
        )

    # -- detached generations (long-running operations) --------------------------

    def submit(
        self,
        prompt: str,
        *,
        count: int = 1,
        size: str = "",
        aspect: str = "",
        quality: str = "",
        output_format: str = "",
        references: Iterable[pb.Reference | bytes | str | os.PathLike] = (),
        request_id: str = "",
        webhook_url: str = "",
        fit: str = "",
        timeout: float | None = None,
    ) -> lro.Operation:
        """SubmitGeneration: the server runs it whether or not this client stays.
        The same `request_id` again returns the same operation."""
        refs = [r if isinstance(r, pb.Reference) else reference(r) for r in references]
        request = pb.GenerateRequest(
            prompt=prompt,
            count=count,
            size=size,
            aspect=aspect,
            quality=quality,
            output_format=output_format,
            references=refs,
            request_id=request_id,
            fit=fit,
            webhook_url=webhook_url,
        )
        return self._unary(self._stub.SubmitGeneration, request, timeout)

    def get_operation(self, name: str, *, timeout: float | None = None) -> lro.Operation:
        return self._unary(
            self._operations.GetOperation,
            lro.GetOperationRequest(name=operation_name(name)),
            timeout,
        )

    def wait(
        self, name: str, *, timeout: float | None = None, poll_s: float = 60.0
    ) -> lro.Operation:
        """The operation once done, or as it is when `timeout` seconds passed
        (None: until done). Each WaitOperation call waits at most `poll_s`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = (
                poll_s if deadline is None else max(0.0, min(poll_s, deadline - time.monotonic()))
            )
            request = lro.WaitOperationRequest(
                name=operation_name(name),
                timeout=duration_pb2.Duration(nanos=int(left % 1 * 1e9), seconds=int(left)),
            )
            op = self._unary(self._operations.WaitOperation, request, left + 30)
            if op.done or (deadline is not None and time.monotonic() >= deadline):
                return op

    def cancel(self, name: str, *, timeout: float | None = None) -> None:
        """Stops it (every codex run of it); FAILED_PRECONDITION when it is already done."""
        self._unary(
            self._operations.CancelOperation,
            lro.CancelOperationRequest(name=operation_name(name)),
            timeout,
        )

    def delete_operation(self, name: str, *, timeout: float | None = None) -> None:
        self._unary(
            self._operations.DeleteOperation,
            lro.DeleteOperationRequest(name=operation_name(name)),
            timeout,
        )

    def list_operations(
        self,
        *,
        page_size: int = 0,
        page_token: str = "",
        filter: str = "",  # noqa: A002 - ListOperations names it so
        timeout: float | None = None,
    ) -> lro.ListOperationsResponse:
        """One page, newest first; `filter`: "done = true|false" or "state = RUNNING" (etc.)."""
        return self._unary(
            self._operations.ListOperations,
            lro.ListOperationsRequest(page_size=page_size, page_token=page_token, filter=filter),
            timeout,
        )

    def iter_operations(self, **filters) -> Iterator[lro.Operation]:
        return _every_page(self.list_operations, "operations", filters)

    def generate(
        self,
        prompt: str,
        *,
        count: int = 1,
        size: str = "",
        aspect: str = "",
        quality: str = "",
        output_format: str = "",
        references: Iterable[pb.Reference | bytes | str | os.PathLike] = (),
        request_id: str = "",
        canvas_size: tuple[int, int] | None = None,
        fit: str = "",
        timeout: float | None = None,
    ) -> Generation:
        """Starts a Generate call. References may be pb.Reference, bytes or paths.
        `canvas_size` (width, height) is for aspect "canvas"; `fit="native"`
        keeps the model's own size instead of the asked-for one."""
        refs = [r if isinstance(r, pb.Reference) else reference(r) for r in references]
        request = pb.GenerateRequest(
            prompt=prompt,
            count=count,
            size=size,
            aspect=aspect,
            quality=quality,
            output_format=output_format,
            references=refs,
            request_id=request_id,
            fit=fit,
        )
        if canvas_size is not None:
            request.canvas_size.width, request.canvas_size.height = canvas_size
        return Generation(self._stub.Generate(request, timeout=timeout, metadata=self._metadata))

    def download(
        self, image_id: str, dest: str | os.PathLike, *, timeout: float | None = None
    ) -> Path:
        """Streams one stored image into `dest` (a file path), checking size and
        sha256 before the file appears under its name; returns the path."""
        dest = Path(dest)
        partial = dest.with_name(dest.name + ".part")
        digest, size, expected = hashlib.sha256(), 0, None
        call = self._stub.GetImageFile(
            pb.GetImageFileRequest(image_id=image_id),
            timeout=timeout if timeout is not None else self._timeout,
            metadata=self._metadata,
        )
        try:
            with open(partial, "wb") as out:
                for chunk in call:
                    if expected is None:
                        expected = (chunk.total_size, chunk.sha256)
                    digest.update(chunk.data)
                    size += len(chunk.data)
                    out.write(chunk.data)
            if expected is None or (size, digest.hexdigest()) != expected:
                raise ClientError(
                    grpc.StatusCode.DATA_LOSS,
                    f"image {image_id}: got {size} bytes sha256 {digest.hexdigest()}, "
                    f"server said {expected}",
                    reason="CHECKSUM_MISMATCH",
                )
            os.replace(partial, dest)
            return dest
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        finally:
            call.cancel()  # no-op when the stream finished
            partial.unlink(missing_ok=True)
