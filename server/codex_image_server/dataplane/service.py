"""The service every surface calls: Generate with its history record, the
key's limits, logs and metrics around it; and the history and store
operations. Surfaces (gRPC servicer, HTTP shim, later others) only convert
their wire format to these calls and back."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncGenerator

from prometheus_client.core import GaugeMetricFamily

from codex_image_server.dataplane.generation import (
    Event,
    Generation,
    ImageEvent,
    Origin,
    SummaryEvent,
)
from codex_image_server.engine.engine import Engine
from codex_image_server.errors import FieldViolation, Kind, Outcome, ServiceError, shutting_down
from codex_image_server.request import fingerprint
from codex_image_server.request.params import GenerateParams, GenerationSpec
from codex_image_server.request.references import ReferenceUse
from codex_image_server.request.validation import usable_request_id, validate
from codex_image_server.runtime.blocking import Blocking, shielded
from codex_image_server.runtime.logs import log
from codex_image_server.runtime.slots import Slots
from codex_image_server.settings import Settings
from codex_image_server.store import OutputStore, Page, Query, RequestRecord, StoredImage
from codex_image_server.team import tenancy
from codex_image_server.team.history import History, now_ms
from codex_image_server.team.keys import ANONYMOUS, ApiKey, Keyring
from codex_image_server.team.metrics import Metrics, gauge
from codex_image_server.team.quotas import KeyLimits, KeyUsage

# Refusals that mean "not yet" for a generation an operation runs: the
# operation goes back to its queue, and the refusal is not a request's outcome.
RETRY_LATER = ("KEY_CONCURRENCY_LIMIT", "QUEUE_FULL", "REQUEST_RUNNING")


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who is calling, as the surface's one auth check found it."""

    key: ApiKey = ANONYMOUS
    surface: str = "grpc"


@dataclasses.dataclass(frozen=True)
class RequestDetail:
    record: RequestRecord
    images: list[StoredImage]
    key_usage: KeyUsage | None


class Service:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        store: OutputStore,
        slots: Slots,
        keyring: Keyring,
        metrics: Metrics,
        blocking: Blocking,
    ):
        self.settings = settings
        self.blocking = blocking
        self.engine = engine
        self.store = store
        self.slots = slots
        self.keyring = keyring
        self.metrics = metrics
        self.history = History(store.metadata)
        self.limits = KeyLimits(self.history)
        metrics.add_live(self._live_gauges)
        self._live: set[GenerateCall] = set()  # touched on the loop only
        self._shutting_down = False

    def shut_down(self) -> None:
        """Refuse new generations and end running ones with UNAVAILABLE
        SHUTTING_DOWN (a retry elsewhere may succeed), before gRPC's own stop
        cuts them off with a bare CANCELLED."""
        self._shutting_down = True
        for call in list(self._live):  # answered calls are never live
            call.prepared().cancel("server shutting down", error=shutting_down())

    async def generate(
        self, params: GenerateParams, caller: Caller, *, for_operation: bool = False
    ) -> GenerateCall:
        """Validated, admitted against the key's limits and recorded (off the
        loop: Pillow decodes references, SQLite records); refusals raise.
        A caller's request id this key used for a finished request is answered
        from the store (`GenerateCall.answered`). `for_operation`: the
        operations runner runs the operation of this id (its own operation does
        not make the id busy; a RETRY_LATER refusal puts it back in its queue
        instead of being recorded)."""
        if self._shutting_down:
            raise shutting_down()
        call = GenerateCall(self, caller, for_operation)
        admitted = asyncio.ensure_future(self.blocking.run(call.admit, params))
        try:
            await asyncio.shield(admitted)
        except asyncio.CancelledError:
            # The caller left while its request was being admitted: once that
            # is done, record it cancelled and give the key's slot back (off
            # the loop: the database may be slow to answer).
            admitted.add_done_callback(
                lambda f: (
                    self.blocking.later(call.abandon)
                    if not f.cancelled() and f.exception() is None
                    else None
                )
            )
            raise
        call.prepare()
        if call.generation is not None:
            self._live.add(call)
        return call

    # Reads and deletes are confined to what the caller's key may see (tenancy.py).

    def get_image(self, image_id: str, caller: Caller) -> StoredImage:
        return self.store.get(image_id, tenancy.owner(caller.key))

    def image_path(self, record: StoredImage):
        return self.store.path(record)

    def delete_image(self, image_id: str, caller: Caller) -> StoredImage:
        record = self.store.delete(image_id, tenancy.owner(caller.key))
        log("image.deleted", image_id=record.id, bytes=record.byte_size, key_name=caller.key.name)
        return record

    def list_images(self, query: Query, caller: Caller) -> Page:
        return self.store.list(tenancy.scoped(query, caller.key))

    def list_requests(self, query: Query, caller: Caller) -> Page:
        return self.history.list(tenancy.scoped(query, caller.key))

    def get_request(self, request_id: str, caller: Caller) -> RequestDetail:
        record, images = self.history.get(request_id, tenancy.owner(caller.key))
        key = self.keyring.by_name(record.key_name) if record.key_name else None
        return RequestDetail(record, images, self.limits.usage(key) if key else None)

    def _live_gauges(self):
        in_use, free, queued = self.slots.snapshot()
        count, size = self.store.totals()
        return [
            gauge("codex_image_slots_in_use", "Generation slots in use", in_use),
            gauge("codex_image_slots_limit", "Generation slots in all", self.slots.limit),
            gauge("codex_image_queue_depth", "Requests waiting for slots", queued),
            gauge("codex_image_images_stored", "Images in the store", count),
            gauge("codex_image_bytes_stored", "Bytes of images in the store", size),
            *self._codex_info(),
            *self._account_gauges(),
        ]

    def _codex_info(self):
        """The codex version as an info gauge (1), from the last readiness probe."""
        ready = self.engine.accounts.cached_readiness()
        if ready is None or not ready.found:
            return []
        return [
            gauge(
                "codex_image_codex_info",
                "The codex CLI the server runs (1; version and tested as labels)",
                1,
                {
                    "version": ready.version_number or ready.version[:40],
                    "tested": "true" if ready.version_tested else "false",
                },
            )
        ]

    def _account_gauges(self):
        in_use = GaugeMetricFamily(
            "codex_image_account_in_use",
            "Codex runs on each account (on every replica sharing it)",
            labels=["account"],
        )
        ready = GaugeMetricFamily(
            "codex_image_account_ready", "1 when the account can take a run", labels=["account"]
        )
        until = GaugeMetricFamily(
            "codex_image_account_exhausted_until_seconds",
            "Unix time the account's usage limit resets (0: not exhausted)",
            labels=["account"],
        )
        for a in self.engine.accounts.states():
            in_use.add_metric([a.name], a.in_use)
            ready.add_metric([a.name], 1 if a.ready else 0)
            until.add_metric([a.name], a.exhausted_until)
        return [in_use, ready, until]


def _log_fields(spec, caller: Caller) -> dict:
    return dict(
        request_id=spec.request_id,
        count=spec.count,
        size=spec.size.text,
        quality=spec.quality,
        output_format=spec.output_format,
        references=len(spec.references),
        prompt_chars=len(spec.prompt),
        key_name=caller.key.name,
        surface=caller.surface,
    )


class _Answered(Exception):
    """Raised inside the store's recording step: this key's earlier request
    of the id completed, so nothing is recorded and it is answered instead."""

    def __init__(self, earlier: RequestRecord):
        super().__init__(earlier.request_id)
        self.earlier = earlier


def _request_running(request_id: str, what: str) -> ServiceError:
    return ServiceError(
        Kind.ALREADY_EXISTS,
        "REQUEST_RUNNING",
        f"request_id {request_id!r} is {what}: wait for it (or WaitOperation on "
        f"operations/{request_id}) rather than generating it twice",
        violations=(FieldViolation("request_id", f"is {what}", "REQUEST_RUNNING"),),
    )


def id_taken(field: str, description: str) -> ServiceError:
    """A request id used for another request (AIP-155): ALREADY_EXISTS naming the field."""
    return ServiceError(
        Kind.ALREADY_EXISTS,
        "REQUEST_ID_REUSED",
        f"invalid request: {field}: {description}",
        violations=(FieldViolation(field, description, "REQUEST_ID_REUSED"),),
    )


class GenerateCall:
    """One Generate request from arrival to its recorded outcome. Refusals
    (bad input, a key over its limit) raise from `admit` and are recorded too.

    A request id the caller chose, that this key's earlier request with the
    same parameters completed with, is answered from the store: its images
    (same ids, same bytes) and summary, no codex run, no new history row, no
    quota. Other parameters are ALREADY_EXISTS naming the first that differs.
    A queued or running operation of the id is ALREADY_EXISTS REQUEST_RUNNING
    (it runs whoever waits). A Generate still running, one that failed or
    was cancelled, or one whose images are gone: it runs anew (a retry is
    what a caller sends after a cut stream or a failure)."""

    def __init__(self, service: Service, caller: Caller, for_operation: bool = False):
        self._svc = service
        self._caller = caller
        self._for_operation = for_operation
        self._arrived_ms = now_ms()
        self._started = time.monotonic()
        self.spec: GenerationSpec | None = None
        self.generation: Generation | None = None
        self.answered: tuple[RequestRecord, list[StoredImage]] | None = None
        self._seq = 0

    def admit(self, params: GenerateParams) -> None:
        """Blocking: validation, the key's limits, the history row."""
        service, caller = self._svc, self._caller
        try:
            spec = validate(params, service.settings)
            if params.request_id:
                self.answered = self._begin_repeatable(spec)
            else:
                self._seq = service.limits.admit(
                    caller.key,
                    spec.count,
                    lambda admission: service.history.begin(
                        spec, caller.key.name, caller.surface, self._arrived_ms, admission
                    ),
                )
        except ServiceError as exc:
            if not (self._for_operation and exc.reason in RETRY_LATER):
                service.history.refused(
                    usable_request_id(params),
                    params,
                    caller.key.name,
                    caller.surface,
                    self._arrived_ms,
                    exc,
                )
                self._count("refused", exc.reason)
            log(
                "generate.refused",
                request_id=usable_request_id(params),
                reason=exc.reason,
                key_name=caller.key.name,
                surface=caller.surface,
            )
            raise
        self.spec = spec
        if self.answered is not None:
            self._count("completed", "ANSWERED_FROM_STORE")
            log(
                "generate.answered_from_store",
                request_id=spec.request_id,
                images=len(self.answered[1]),
                key_name=caller.key.name,
                surface=caller.surface,
            )

    def _begin_repeatable(self, spec) -> tuple[RequestRecord, list[StoredImage]] | None:
        """Blocking. Records the request of a caller-chosen id (None), or finds
        the earlier one it repeats (its record and images)."""
        service, key, history = self._svc, self._caller.key, self._svc.history
        if not self._for_operation:
            operation = service.store.metadata.get_operation(spec.request_id, key.name)
            if operation is not None and not operation.done:
                raise _request_running(
                    spec.request_id, f"operations/{spec.request_id}, still {operation.state}"
                )
        asked, expired = fingerprint.of(spec), set()

        def same_id(earlier: RequestRecord | None) -> None:
            if (
                earlier is None
                or earlier.status in ("failed", "cancelled")
                or earlier.seq in expired
            ):
                return
            field = fingerprint.differing_field(earlier.fingerprint, asked)
            if field is not None:
                raise id_taken(
                    field,
                    f"differs from the request first made with request_id "
                    f"{spec.request_id!r}; repeat it unchanged or use a new request_id",
                )
            if earlier.status == "running":
                if self._for_operation:  # the operation waits its turn (it goes back to its queue)
                    raise _request_running(spec.request_id, "the id of a request still running")
                # A Generate's stream is its caller's: a repeat while it runs is
                # a retry whose first stream was cut (its server may not know
                # yet, or died): refusing it would fail the retry.
                return
            raise _Answered(earlier)

        while True:
            try:
                self._seq = service.limits.admit(
                    key,
                    spec.count,
                    lambda admission: history.begin(
                        spec,
                        key.name,
                        self._caller.surface,
                        self._arrived_ms,
                        admission,
                        fingerprint=asked,
                        same_id=same_id,
                    ),
                )
                return None
            except _Answered as answered:
                images = history.images(answered.earlier)
                if images is not None:
                    return answered.earlier, images
                expired.add(answered.earlier.seq)  # its images were deleted: the id is free again

    def abandon(self) -> None:
        """Admitted but never run: the caller went away first."""
        if self.answered is not None:
            return  # nothing was recorded
        # Its record's outcome frees the key's slot.
        self._svc.history.finish(
            self._seq,
            "cancelled",
            ServiceError(
                Kind.CANCELLED,
                "REQUEST_CANCELED",
                "the caller went away before the request started",
            ),
            duration_ms=int((time.monotonic() - self._started) * 1000),
            queue_wait_ms=0,
            codex_ms=0,
            accounts=(),
            image_ids=(),
        )
        self._count("cancelled", "REQUEST_CANCELED")

    def prepare(self) -> None:
        """On the loop: the Generation lives there."""
        if self.answered is not None:
            return
        settings = self._svc.settings
        assert self.spec is not None  # admit() came first
        self.generation = Generation(
            self.spec,
            self._svc.engine,
            self._svc.store,
            self._svc.slots,
            settings.work_dir,
            settings.generation_timeout_ms / 1000,
            self._svc.blocking,
            Origin(self._caller.key.name, self._seq),
        )
        self.spec = None  # the Generation's now: it drops the reference bytes once they are on disk

    def _count(self, outcome: str, reason: str) -> None:
        self._svc.metrics.requests.labels(self._caller.surface, outcome, reason).inc()

    def prepared(self) -> Generation:
        """The Generation prepare() made (a call answered from the store has none)."""
        if self.generation is None:
            raise RuntimeError("prepare() makes the Generation first")
        return self.generation

    def cancel(self, reason: str) -> None:
        if self.generation is not None:
            self.generation.cancel(reason)

    async def events(self) -> AsyncGenerator[Event, None]:
        if self.answered is not None:
            for event in _stored_events(*self.answered):
                yield event
            return
        generation = self.prepared()
        fields = _log_fields(generation.spec, self._caller)
        log("generate.start", **fields)
        images: list[str] = []
        outcome = Outcome()
        recorded = False
        try:
            with outcome:
                async with contextlib.aclosing(generation.events()) as events:
                    async for event in events:
                        if isinstance(event, ImageEvent):
                            images.append(event.image.id)
                        elif isinstance(event, SummaryEvent):
                            # The summary tells the caller it completed: the
                            # history must say so first, or a replica dying
                            # with the outcome unwritten leaves it "failed".
                            recorded = True
                            row = self._row(None, tuple(images))
                            await shielded(self._svc.blocking.run(self._record, row, now=True))
                        yield event
        finally:
            self._svc._live.discard(self)
            row = self._row(outcome.error, tuple(images))
            if not recorded:
                # Before the caller sees the end, so GetRequest agrees at once;
                # off the loop, as PostgreSQL that does not answer holds a
                # write for the pool's wait (every call would stall with it).
                await shielded(self._svc.blocking.run(self._record, row))
            self._report(outcome.error, row, fields)

    def _row(self, error: ServiceError | None, images: tuple[str, ...]) -> dict:
        """The history's outcome of this call, ended with `error` (None: completed)."""
        generation = self.prepared()
        if error is None:
            status = "completed"
        elif error.kind is Kind.CANCELLED:
            status = "cancelled"
        elif not generation.admitted:
            status = "refused"
        else:
            status = "failed"
        return {
            "status": status,
            "error": error,
            "duration_ms": int((time.monotonic() - self._started) * 1000),
            "queue_wait_ms": generation.queue_wait_ms,
            "codex_ms": max(generation.codex_ms, default=0),
            "accounts": tuple(generation.accounts),
            "image_ids": images,
        }

    def _record(self, row: dict, now: bool = False) -> None:
        """The outcome frees the key's slot (limits count running records).
        `now`: written before this returns, else UNAVAILABLE (the store keeps
        it to write once the database answers: asking again with the same
        request id then gets the images)."""
        self._svc.history.finish(self._seq, **row, now=now)

    def _report(self, error: ServiceError | None, row: dict, fields: dict) -> None:
        generation, metrics = self.prepared(), self._svc.metrics
        status, images = row["status"], row["image_ids"]
        reason = error.reason if error else ""
        self._count(status, reason)
        metrics.images.inc(len(images))
        metrics.total.observe(row["duration_ms"] / 1000)
        if generation.admitted:
            metrics.queue_wait.observe(generation.queue_wait_ms / 1000)
        for ms in generation.codex_ms:
            metrics.codex_run.observe(ms / 1000)
        log(
            "generate.end",
            outcome=status if error is None or status == "cancelled" else reason.lower(),
            status=status,
            images=len(images),
            duration_ms=row["duration_ms"],
            **fields,
        )


def _stored_events(record: RequestRecord, images: list[StoredImage]) -> list[Event]:
    """A completed request told again from the store: its images, then its summary."""
    first = images[0] if images else None
    delivered = {f"{image.width}x{image.height}" for image in images}
    summary = SummaryEvent(
        record.request_id,
        record.requested_size,
        delivered.pop() if len(delivered) == 1 else "mixed",
        record.quality,
        record.output_format,
        tuple(image.id for image in images),
        record.duration_ms,
        target_size=first.target_size if first else record.resolved_size,
        aspect_ratio=first.aspect_ratio if first else "",
        aspect_source=first.aspect_source if first else "",
        fit=first.fit if first else "",
        background=first.background if first else "auto",
        references=tuple(ReferenceUse(**use) for use in (first.references if first else ())),
    )
    return [*(ImageEvent(image) for image in images), summary]
