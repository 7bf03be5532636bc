"""Detached generations: a submitted request becomes an operation in the
metadata store (store/operations.py), and a runner on every server takes
queued ones and runs each through the service's one Generate path (its
validation, the key's limits, slots, codex, history), so the caller may go
away. Its state, progress and outcome are written back to the store, where
any server answers Get/List/Wait/Cancel/Delete from.

The wire format stays outside: a codec (the gRPC layer's) turns the stored
request bytes into parameters, compares two requests and encodes the result.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import secrets
import time
from typing import Protocol

from codex_image_server.dataplane.generation import ImageEvent, ProgressEvent, SummaryEvent
from codex_image_server.dataplane.service import (
    RETRY_LATER,
    Caller,
    GenerateCall,
    Service,
    id_taken,
)
from codex_image_server.errors import FieldViolation, Kind, ServiceError, invalid, not_found
from codex_image_server.operations import webhooks
from codex_image_server.request.params import GenerateParams
from codex_image_server.request.validation import validate
from codex_image_server.runtime.logs import log
from codex_image_server.store.operations import DONE, STATES, OperationRecord
from codex_image_server.store.paging import Cursor, page
from codex_image_server.store.records import Page, Query
from codex_image_server.team import tenancy
from codex_image_server.team.history import now_ms
from codex_image_server.team.keys import ANONYMOUS

# How often a server looks for queued work it was not told of (another
# replica's submissions, leases run out) and renews its own leases.
POLL_S = 0.5
# WaitOperation without a timeout waits this long at most; with one, at most MAX.
DEFAULT_WAIT_S = 60.0
MAX_WAIT_S = 3600.0
_FILTERS = {"done=true": "done", "done=false": "pending", **{f"state={s}": s for s in STATES}}


class OperationCodec(Protocol):
    def params(self, request: bytes) -> GenerateParams: ...
    def differing_field(self, old: bytes, new: bytes) -> str | None: ...
    def result(self, images: list, summary: SummaryEvent | None) -> bytes: ...


def error_json(error: ServiceError) -> str:
    return json.dumps(
        {
            "kind": error.kind.value,
            "reason": error.reason,
            "message": error.message,
            "retry_after_s": error.retry_after_s,
            "violations": [dataclasses.asdict(v) for v in error.violations],
        }
    )


def error_of(record: OperationRecord) -> ServiceError | None:
    fields = record.error_fields()
    if fields is None:
        return None
    return ServiceError(
        Kind(fields["kind"]),
        fields["reason"],
        fields["message"],
        retry_after_s=fields.get("retry_after_s"),
        violations=tuple(FieldViolation(**v) for v in fields.get("violations") or ()),
    )


def _server_died() -> ServiceError:
    return ServiceError(
        Kind.UNAVAILABLE,
        "SERVER_STOPPED",
        "the server running this generation stopped twice while it ran; submit it again",
        retry_after_s=1,
    )


def _cancelled() -> ServiceError:
    return ServiceError(Kind.CANCELLED, "REQUEST_CANCELED", "cancelled by CancelOperation")


def parse_filter(text: str) -> str:
    """AIP-160's two filters this list takes: `done = true|false` and
    `state = QUEUED|RUNNING|SUCCEEDED|FAILED|CANCELLED`."""
    normal = text.replace(" ", "").replace('"', "").lower().replace("state=state_", "state=")
    if not normal:
        return ""
    if normal not in _FILTERS:
        raise invalid(
            [
                FieldViolation(
                    "filter",
                    "takes `done = true`, `done = false` or `state = STATE` "
                    f"(STATE one of {', '.join(s.upper() for s in STATES)})",
                    "INVALID_FILTER",
                )
            ]
        )
    return _FILTERS[normal]


def _states(status: str) -> tuple[str, ...]:
    return {"": (), "done": DONE, "pending": ("queued", "running")}.get(status, (status,))


@dataclasses.dataclass
class Running:
    """One operation this server runs now."""

    record: OperationRecord
    call: GenerateCall | None = None  # once admitted
    cancel_asked: bool = False
    candidates: list = dataclasses.field(default_factory=list)


class Operations:
    def __init__(
        self,
        service: Service,
        codec: OperationCodec,
        owner: str,
        *,
        one_process: bool,
        webhooks=None,
    ):
        self._service = service
        self._metadata = service.store.metadata
        self._blocking = service.blocking
        self._codec = codec
        self._owner = owner
        self._one_process = one_process
        self._webhooks = webhooks
        self._lease_ms = service.settings.lease_ms
        self._capacity = service.slots.limit
        self._running: dict[str, Running] = {}
        # Waiters of an operation: resolved when it changes, with its record when it ended here.
        self._changed: dict[str, asyncio.Future] = {}
        self._orphans_checked = 0.0
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task] = []
        self._stopping = False
        service.metrics.add_live(self._gauges)

    # -- life -----------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        if self._webhooks is not None:
            self._webhooks.start(self._loop)
        if self._one_process:
            # SQLite has one server: a row left running was left by a dead one.
            await self._blocking.run(self._metadata.release_operations)
        self._tasks = [
            asyncio.create_task(self._take_work()),
            asyncio.create_task(self._keep_leases()),
        ]

    async def stop(self) -> None:
        """Runs this server leaves are handed back (their leases end now), not failed."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        if self._webhooks is not None:
            self._webhooks.stop()
        for running in list(self._running.values()):
            if running.call is not None:
                running.call.cancel("server shutting down")
        for _ in range(200):
            if not self._running:
                break
            await asyncio.sleep(0.05)
        try:
            await self._blocking.run(self._metadata.release_operations, self._owner)
        except ServiceError as exc:
            # The database is away: the leases lapse on their own, and another
            # replica (or this one restarted) takes the runs back then.
            log("operations.release_failed", level="warning", reason=exc.reason)

    def _gauges(self):
        from codex_image_server.team.metrics import gauge  # noqa: PLC0415 - metrics imports prometheus only when read

        counts = self._metadata.operation_counts()
        return [
            gauge(
                "codex_image_operations_queued",
                "Detached generations waiting to run",
                counts.get("queued", 0),
            ),
            gauge(
                "codex_image_operations_running",
                "Detached generations running (every replica)",
                counts.get("running", 0),
            ),
        ]

    def _poke(self, request_id: str | None = None, ended: OperationRecord | None = None) -> None:
        """From any thread: new work or a changed operation (`ended`: its record, done)."""

        def wake():
            if self._wake is not None:
                self._wake.set()
            if request_id and request_id in self._changed:
                changed = self._changed.pop(request_id)
                if not changed.done():
                    changed.set_result(ended)

        if self._loop is not None:
            self._loop.call_soon_threadsafe(wake)

    # -- calls ----------------------------------------------------------------

    def submit(
        self, request: bytes, params: GenerateParams, webhook_url: str, caller: Caller
    ) -> OperationRecord:
        """Blocking. Validated now (bad input never queues); the same key's
        same request id answers the operation it made, starting nothing."""
        validate(params, self._service.settings)
        if self._webhooks is not None:
            self._webhooks.check(webhook_url)
        record = OperationRecord(
            request_id=params.request_id,
            key_name=caller.key.name,
            surface=caller.surface,
            state="queued",
            request=request,
            webhook_url=webhook_url,
            created_unix_ms=now_ms(),
        )
        if self._metadata.add_operation(record) is not None:
            log(
                "operation.submitted",
                request_id=record.request_id,
                key_name=caller.key.name,
                surface=caller.surface,
            )
            self._poke()
            return record
        existing = self._metadata.get_operation(params.request_id)
        if existing is None:  # deleted meanwhile: this id is free again
            return self.submit(request, params, webhook_url, caller)
        if existing.key_name != caller.key.name:
            raise id_taken("request_id", "is the id of another key's operation; choose another")
        field = self._codec.differing_field(existing.request, request)
        if field is not None:
            raise id_taken(
                field,
                f"differs from the request first submitted with request_id "
                f"{params.request_id!r}; resubmit it unchanged or use a new request_id",
            )
        return existing

    def check_webhook(self, url: str) -> None:
        """Blocking (DNS): a webhook this server would not send is refused now."""
        if self._webhooks is not None:
            self._webhooks.check(url)

    def generate_ended(
        self,
        request_id: str,
        caller: Caller,
        webhook_url: str,
        result: bytes | None,
        error: ServiceError | None,
        started_unix_ms: int,
    ) -> None:
        """A Generate with a webhook ended: its outcome is sent as an operation
        would be (not stored: Generate makes no operation)."""
        state = (
            "succeeded"
            if error is None
            else "cancelled"
            if error.kind is Kind.CANCELLED
            else "failed"
        )
        self._notify(
            OperationRecord(
                request_id=request_id,
                key_name=caller.key.name,
                surface=caller.surface,
                state=state,
                request=b"",
                webhook_url=webhook_url,
                created_unix_ms=started_unix_ms,
                started_unix_ms=started_unix_ms,
                ended_unix_ms=now_ms(),
                attempts=1,
                result=result,
                error=error_json(error) if error else "",
            )
        )

    def get(self, request_id: str, caller: Caller) -> tuple[OperationRecord, int]:
        """Blocking. The record and its queue position (0 unless queued)."""
        record = self._metadata.get_operation(request_id, tenancy.owner(caller.key))
        if record is None:
            raise not_found(f"operation operations/{request_id}")
        running = self._running.get(request_id)
        if running is not None and running.candidates and record.state == "running":
            record = dataclasses.replace(record, progress=json.dumps(running.candidates))
        return record, self._metadata.queue_position(record) if record.state == "queued" else 0

    def list(self, query: Query, caller: Caller) -> Page:
        """Blocking. Newest first, AIP-158 pages signed with the store's secret."""
        query = tenancy.scoped(query, caller.key)
        return page(
            "operations",
            query,
            lambda q, after, limit: self._metadata.list_operations(
                q.owner, _states(q.status), after, limit
            ),
            lambda r: Cursor(r.created_unix_ms, r.request_id),
            self._metadata.page_secret(),
        )

    def cancel(self, request_id: str, caller: Caller) -> OperationRecord:
        """Blocking. A queued one ends now; a running one's codex processes are
        stopped by its server (at once when that is this one)."""
        record, _ = self.get(request_id, caller)
        if record.done:
            raise ServiceError(
                Kind.FAILED_PRECONDITION,
                "OPERATION_DONE",
                f"operations/{request_id} is already done ({record.state}); nothing to cancel",
            )
        updated = self._metadata.cancel_operation(
            request_id, now_ms(), error_json(_cancelled()), webhooks.due_unix_ms()
        )
        if updated is None:
            raise ServiceError(
                Kind.FAILED_PRECONDITION,
                "OPERATION_DONE",
                f"operations/{request_id} ended meanwhile; nothing to cancel",
            )
        log(
            "operation.cancel", request_id=request_id, key_name=caller.key.name, state=updated.state
        )
        if updated.state == "cancelled":
            self._poke(request_id, updated)
            self._notify(updated)
        elif self._loop is not None:
            self._loop.call_soon_threadsafe(self._cancel_local, request_id)
        return updated

    def delete(self, request_id: str, caller: Caller) -> None:
        record, _ = self.get(request_id, caller)
        if not record.done:
            raise ServiceError(
                Kind.FAILED_PRECONDITION,
                "OPERATION_NOT_DONE",
                f"operations/{request_id} is {record.state}; cancel it first, then delete it",
            )
        self._metadata.delete_operation(request_id)
        log("operation.deleted", request_id=request_id, key_name=caller.key.name)

    async def wait(
        self, request_id: str, timeout_s: float | None, caller: Caller
    ) -> tuple[OperationRecord, int]:
        """Returns once it is done or the timeout passed, whichever is first."""
        deadline = time.monotonic() + min(
            DEFAULT_WAIT_S if timeout_s is None else timeout_s, MAX_WAIT_S
        )
        while True:
            # Listened for before the read: an end written between the read and
            # the wait still wakes it (else it would sleep a whole poll).
            changed = self._changed.setdefault(
                request_id, asyncio.get_running_loop().create_future()
            )
            record, position = await self._blocking.run(self.get, request_id, caller)
            left = deadline - time.monotonic()
            if record.done:
                if self._changed.get(request_id) is changed:
                    del self._changed[request_id]
                if not changed.done():
                    changed.set_result(
                        None
                    )  # another waiter on it reads again (it may have read before the end)
                return record, position
            if left <= 0:
                return record, position
            # Polled too: another replica's run changes the row, not our future.
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a
            # cancellation that comes as the future completes.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(left, POLL_S)):
                    ended = await asyncio.shield(changed)
                if ended is not None:
                    return (
                        ended,
                        0,
                    )  # it ended here: its final record, no second read (the caller saw it above)

    # -- running --------------------------------------------------------------

    def _cancel_local(self, request_id: str) -> None:
        running = self._running.get(request_id)
        if running is None:
            return
        running.cancel_asked = True
        if running.call is not None:
            running.call.cancel("cancelled by CancelOperation")

    async def _take_work(self) -> None:
        wake = self._wake
        assert wake is not None  # start() made it before this task
        while not self._stopping:
            # Cleared before the claim, not after: a submit poked during the
            # claim (which may have missed its row) wakes the next round at once.
            wake.clear()
            try:
                while len(self._running) < self._capacity:
                    record = await self._blocking.run(self._claim)
                    if record is None:
                        break
                    self._running[record.request_id] = Running(record)
                    asyncio.create_task(self._run(self._running[record.request_id]))
            except ServiceError as exc:  # the database away: try again on the next round
                log("operation.claim_failed", level="warning", reason=exc.reason)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_S):
                    await wake.wait()

    def _claim(self) -> OperationRecord | None:
        now = now_ms()
        if (
            time.monotonic() - self._orphans_checked >= POLL_S
        ):  # not on every claim: a lease runs for seconds
            self._orphans_checked = time.monotonic()
            for dead in self._metadata.fail_orphans(
                now, error_json(_server_died()), webhooks.due_unix_ms()
            ):
                log(
                    "operation.failed",
                    request_id=dead.request_id,
                    reason="SERVER_STOPPED",
                    attempts=dead.attempts,
                )
                self._notify(dead)
        record = self._metadata.claim_operation(self._owner, now, self._lease_ms)
        if record is not None:
            log("operation.start", request_id=record.request_id, attempts=record.attempts)
        return record

    async def _keep_leases(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self._lease_ms / 3000)
            try:
                asked = await self._blocking.run(
                    self._metadata.renew_operations,
                    self._owner,
                    list(self._running),
                    now_ms() + self._lease_ms,
                )
            except ServiceError as exc:
                log("operation.renew_failed", level="warning", reason=exc.reason)
                continue
            for request_id in asked:
                self._cancel_local(request_id)

    async def _run(self, running: Running) -> None:
        record = running.record
        state, result, error = "failed", None, None
        try:
            key = self._service.keyring.by_name(record.key_name) if record.key_name else ANONYMOUS
            if key is None:
                raise ServiceError(
                    Kind.PERMISSION_DENIED,
                    "KEY_REMOVED",
                    "the API key that submitted this operation is no longer configured",
                )
            params = self._codec.params(record.request)
            running.candidates = [
                {"index": i, "state": "queued"} for i in range(max(1, params.count))
            ]
            try:
                call = await self._service.generate(
                    params, Caller(key, record.surface), for_operation=True
                )
            except ServiceError as exc:
                # Not yet (its key at its limit, a Generate of its id still
                # running): back to the queue, tried again a little later.
                if exc.reason not in RETRY_LATER or running.cancel_asked:
                    raise
                await self._blocking.run(
                    self._metadata.requeue_operation,
                    record.request_id,
                    self._owner,
                    now_ms() + 1000 * min(exc.retry_after_s or 1, 5),
                )
                self._running.pop(record.request_id, None)
                return
            running.call = call
            if running.cancel_asked or self._stopping:
                call.cancel("cancelled by CancelOperation")
            images, summary = [], None
            async with contextlib.aclosing(call.events()) as events:
                async for event in events:
                    if isinstance(event, ImageEvent):
                        images.append(event.image)
                        self._candidate(
                            running, event.image.index, state="finished", image_id=event.image.id
                        )
                    elif isinstance(event, SummaryEvent):
                        summary = event
                    elif isinstance(event, ProgressEvent) and event.candidate_index is not None:
                        self._candidate(
                            running,
                            event.candidate_index,
                            state="running",
                            phase=event.phase or event.stage,
                        )
            state, result = "succeeded", self._codec.result(images, summary)
        except ServiceError as exc:
            error = exc
            state = "cancelled" if exc.kind is Kind.CANCELLED and running.cancel_asked else "failed"
            if self._stopping and not running.cancel_asked:
                # Handed back to the queue, not ended, the attempt not counted: the next
                # server to start (or another replica) runs it again.
                try:
                    await self._blocking.run(
                        self._metadata.requeue_operation, record.request_id, self._owner, 0
                    )
                finally:
                    self._running.pop(record.request_id, None)
                return
        except Exception as exc:  # noqa: BLE001 - recorded as INTERNAL, never lost
            log(
                "operation.crashed",
                level="error",
                request_id=record.request_id,
                error_type=type(exc).__name__,
            )
            error = ServiceError(Kind.INTERNAL, "INTERNAL", "internal error")
        finished = None
        try:
            finished = await self._blocking.run(
                self._metadata.finish_operation,
                record.request_id,
                self._owner,
                state,
                now_ms(),
                result=result,
                error=error_json(error) if error else "",
                webhook_due_unix_ms=webhooks.due_unix_ms(),
                progress=json.dumps(running.candidates),
            )
        finally:
            self._running.pop(record.request_id, None)
            self._poke(record.request_id, finished)
        log(
            "operation.end",
            request_id=record.request_id,
            state=state,
            reason=error.reason if error else "",
        )
        if finished is not None:
            self._notify(finished)

    def _candidate(self, running: Running, index: int, **fields) -> None:
        if not 0 <= index < len(running.candidates):
            return
        candidate = running.candidates[index]
        moved = candidate.get("state") != fields.get("state")
        candidate.update(fields)
        # A candidate started or finished: stored, so every replica reports it (phases stay local).
        if moved:
            stored = asyncio.ensure_future(
                self._blocking.run(
                    self._metadata.set_operation_progress,
                    running.record.request_id,
                    self._owner,
                    json.dumps(running.candidates),
                )
            )
            stored.add_done_callback(
                lambda f: f.cancelled() or f.exception()
            )  # best effort: the end is what counts

    def _notify(self, record: OperationRecord) -> None:
        """The webhook of an operation that ended, if it asked for one."""
        if self._webhooks is not None and record.webhook_url:
            self._webhooks.deliver(record)


def new_request_id() -> str:
    return "op-" + secrets.token_hex(12)
