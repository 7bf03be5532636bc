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

from codex_image_server.dataplane.generation import Event, Generation, ImageEvent, Origin
from codex_image_server.engine.engine import Engine
from codex_image_server.errors import Kind, Outcome, ServiceError, shutting_down
from codex_image_server.request.params import GenerateParams, GenerationSpec
from codex_image_server.request.validation import usable_request_id, validate
from codex_image_server.runtime.blocking import Blocking
from codex_image_server.runtime.logs import log
from codex_image_server.runtime.slots import Slots
from codex_image_server.settings import Settings
from codex_image_server.store import OutputStore, Page, Query, RequestRecord, StoredImage
from codex_image_server.team import tenancy
from codex_image_server.team.history import History, now_ms
from codex_image_server.team.keys import ANONYMOUS, ApiKey, Keyring
from codex_image_server.team.metrics import Metrics, gauge
from codex_image_server.team.quotas import KeyLimits, KeyUsage


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
    def __init__(self, settings: Settings, engine: Engine, store: OutputStore, slots: Slots, keyring: Keyring,
                 metrics: Metrics, blocking: Blocking):
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
        for call in list(self._live):
            call.prepared().cancel("server shutting down", error=shutting_down())

    async def generate(self, params: GenerateParams, caller: Caller) -> GenerateCall:
        """Validated, admitted against the key's limits and recorded (off the
        loop: Pillow decodes references, SQLite records); refusals raise."""
        if self._shutting_down:
            raise shutting_down()
        call = GenerateCall(self, caller)
        admitted = asyncio.ensure_future(self.blocking.run(call.admit, params))
        try:
            await asyncio.shield(admitted)
        except asyncio.CancelledError:
            # The caller left while its request was being admitted: once that
            # is done, record it cancelled and give the key's slot back.
            admitted.add_done_callback(
                lambda f: call.abandon() if not f.cancelled() and f.exception() is None else None)
            raise
        call.prepare()
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
        return [gauge("codex_image_slots_in_use", "Generation slots in use", in_use),
                gauge("codex_image_slots_limit", "Generation slots in all", self.slots.limit),
                gauge("codex_image_queue_depth", "Requests waiting for slots", queued),
                gauge("codex_image_images_stored", "Images in the store", count),
                gauge("codex_image_bytes_stored", "Bytes of images in the store", size),
                *self._codex_info(), *self._account_gauges()]

    def _codex_info(self):
        """The codex version as an info gauge (1), from the last readiness probe."""
        ready = self.engine.accounts.cached_readiness()
        if ready is None or not ready.found:
            return []
        return [gauge("codex_image_codex_info", "The codex CLI the server runs (1; version and tested as labels)",
                      1, {"version": ready.version_number or ready.version[:40],
                          "tested": "true" if ready.version_tested else "false"})]

    def _account_gauges(self):
        in_use = GaugeMetricFamily("codex_image_account_in_use",
                                   "Codex runs on each account (on every replica sharing it)", labels=["account"])
        ready = GaugeMetricFamily("codex_image_account_ready", "1 when the account can take a run",
                                  labels=["account"])
        until = GaugeMetricFamily("codex_image_account_exhausted_until_seconds",
                                  "Unix time the account's usage limit resets (0: not exhausted)",
                                  labels=["account"])
        for a in self.engine.accounts.states():
            in_use.add_metric([a.name], a.in_use)
            ready.add_metric([a.name], 1 if a.ready else 0)
            until.add_metric([a.name], a.exhausted_until)
        return [in_use, ready, until]


def _log_fields(spec, caller: Caller) -> dict:
    return dict(request_id=spec.request_id, count=spec.count, size=spec.size.text,
                quality=spec.quality, output_format=spec.output_format,
                references=len(spec.references), prompt_chars=len(spec.prompt),
                key_name=caller.key.name, surface=caller.surface)


class GenerateCall:
    """One Generate request from arrival to its recorded outcome. Refusals
    (bad input, a key over its limit) raise from `admit` and are recorded too."""

    def __init__(self, service: Service, caller: Caller):
        self._svc = service
        self._caller = caller
        self._arrived_ms = now_ms()
        self._started = time.monotonic()
        self.spec: GenerationSpec | None = None
        self.generation: Generation | None = None
        self._seq = 0

    def admit(self, params: GenerateParams) -> None:
        """Blocking: validation, the key's limits, the history row."""
        service, caller = self._svc, self._caller
        try:
            spec = validate(params, service.settings)
            self._seq = service.limits.admit(caller.key, spec.count, lambda admission: service.history.begin(
                spec, caller.key.name, caller.surface, self._arrived_ms, admission))
        except ServiceError as exc:
            service.history.refused(usable_request_id(params), params, caller.key.name, caller.surface,
                                    self._arrived_ms, exc)
            self._count("refused", exc.reason)
            log("generate.refused", request_id=usable_request_id(params), reason=exc.reason,
                key_name=caller.key.name, surface=caller.surface)
            raise
        self.spec = spec

    def abandon(self) -> None:
        """Admitted but never run: the caller went away first."""
        # Its record's outcome frees the key's slot.
        self._svc.history.finish(self._seq, "cancelled", ServiceError(
            Kind.CANCELLED, "REQUEST_CANCELED", "the caller went away before the request started"),
            duration_ms=int((time.monotonic() - self._started) * 1000), queue_wait_ms=0, codex_ms=0,
            accounts=(), image_ids=())
        self._count("cancelled", "REQUEST_CANCELED")

    def prepare(self) -> None:
        """On the loop: the Generation lives there."""
        settings = self._svc.settings
        assert self.spec is not None  # admit() came first
        self.generation = Generation(self.spec, self._svc.engine, self._svc.store, self._svc.slots,
                                     settings.work_dir, settings.generation_timeout_ms / 1000,
                                     self._svc.blocking, Origin(self._caller.key.name, self._seq))
        self.spec = None  # the Generation's now: it drops the reference bytes once they are on disk

    def _count(self, outcome: str, reason: str) -> None:
        self._svc.metrics.requests.labels(self._caller.surface, outcome, reason).inc()

    def prepared(self) -> Generation:
        """The Generation prepare() made."""
        if self.generation is None:
            raise RuntimeError("prepare() makes the Generation first")
        return self.generation

    def cancel(self, reason: str) -> None:
        self.prepared().cancel(reason)

    async def events(self) -> AsyncGenerator[Event, None]:
        generation = self.prepared()
        fields = _log_fields(generation.spec, self._caller)
        log("generate.start", **fields)
        images: list[str] = []
        outcome = Outcome()
        try:
            with outcome:
                async with contextlib.aclosing(generation.events()) as events:
                    async for event in events:
                        if isinstance(event, ImageEvent):
                            images.append(event.image.id)
                        yield event
        finally:
            self._svc._live.discard(self)
            self._finish(outcome.error, tuple(images), fields)

    def _finish(self, error: ServiceError | None, images: tuple[str, ...], fields: dict) -> None:
        generation, metrics = self.prepared(), self._svc.metrics
        if error is None:
            status = "completed"
        elif error.kind is Kind.CANCELLED:
            status = "cancelled"
        elif not generation.admitted:
            status = "refused"
        else:
            status = "failed"
        duration_ms = int((time.monotonic() - self._started) * 1000)
        codex_ms = max(generation.codex_ms, default=0)
        # One UPDATE by primary key (WAL, no fsync): cheap enough for the loop,
        # and done before the caller sees the end, so GetRequest agrees at once.
        # The outcome frees the key's slot (limits count running records).
        self._svc.history.finish(self._seq, status, error, duration_ms=duration_ms,
                                 queue_wait_ms=generation.queue_wait_ms, codex_ms=codex_ms,
                                 accounts=tuple(generation.accounts), image_ids=images)
        reason = error.reason if error else ""
        self._count(status, reason)
        metrics.images.inc(len(images))
        metrics.total.observe(duration_ms / 1000)
        if generation.admitted:
            metrics.queue_wait.observe(generation.queue_wait_ms / 1000)
        for ms in generation.codex_ms:
            metrics.codex_run.observe(ms / 1000)
        log("generate.end", outcome=status if error is None or status == "cancelled" else reason.lower(),
            status=status, images=len(images), duration_ms=duration_ms, **fields)
