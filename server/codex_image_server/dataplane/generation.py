"""One Generate request: its candidates run side by side, their events come
out as one stream, and any way it ends (done, failed, cancelled, timed out)
leaves no codex process, no working directory and no held slot behind."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import threading
import time
from collections.abc import AsyncGenerator
from pathlib import Path

from codex_image_server.engine import prompt as prompts
from codex_image_server.engine.candidate import CandidateRun
from codex_image_server.engine.engine import Engine
from codex_image_server.errors import FieldViolation, Kind, ServiceError, invalid
from codex_image_server.finishing import finish as finishing
from codex_image_server.request import imaging, references
from codex_image_server.request.params import GenerationSpec
from codex_image_server.runtime import workdirs
from codex_image_server.runtime.blocking import Blocking, shielded
from codex_image_server.runtime.logs import log
from codex_image_server.runtime.slots import Slots
from codex_image_server.store import OutputStore, StoredImage

MODEL = "gpt-image-2"
BACKEND = "codex-exec"


@dataclasses.dataclass(frozen=True)
class ProgressEvent:
    stage: str  # queued | candidate_started | codex_phase | candidate_finished
    elapsed_ms: int
    candidate_index: int | None = None
    phase: str = ""
    detail: str = ""
    queue_position: int = 0


@dataclasses.dataclass(frozen=True)
class ImageEvent:
    image: StoredImage


@dataclasses.dataclass(frozen=True)
class SummaryEvent:
    request_id: str
    requested_size: str
    resolved_size: str
    quality: str
    output_format: str
    image_ids: tuple[str, ...]
    duration_ms: int
    target_size: str = ""
    aspect_ratio: str = ""
    aspect_source: str = ""
    fit: str = ""
    references: tuple[references.ReferenceUse, ...] = ()
    background: str = "auto"
    status: str = "completed"
    model: str = MODEL
    backend: str = BACKEND


Event = ProgressEvent | ImageEvent | SummaryEvent


def _create_workdir(workdir: Path, refs) -> tuple[Path, ...]:
    """The request's working directory with its references on disk: one trip to the pool."""
    workdirs.create(workdir)
    return references.spill(refs, workdir / "references")


@dataclasses.dataclass(frozen=True)
class Origin:
    """Who asked, recorded with each image: the key's name and the history row."""

    key_name: str = ""
    request_seq: int = 0


@dataclasses.dataclass(frozen=True)
class _Done:
    index: int
    error: ServiceError | None


class Generation:
    """Lives on the event loop. Each candidate's codex run is watched by a
    thread of its own (bounded by the slots); its events reach the loop
    through `call_soon_threadsafe`, so nothing here blocks the loop."""

    def __init__(
        self,
        spec: GenerationSpec,
        engine: Engine,
        store: OutputStore,
        slots: Slots,
        work_root: Path,
        timeout_s: float,
        blocking: Blocking,
        origin: Origin = Origin(),
    ):
        self.spec = spec
        self._origin = origin
        self._engine = engine
        self._store = store
        self._slots = slots
        self._work_root = work_root
        self._timeout_s = timeout_s
        self._blocking = blocking
        self._started = time.monotonic()
        # Read by candidate threads, set on the loop (an Event's flag is a plain bool).
        self._cancelled = asyncio.Event()
        self._cancel_reason = ""
        self._cancel_error: ServiceError | None = None
        self._lock = threading.Lock()
        self._runs: list[CandidateRun] = []
        self._loop = asyncio.get_running_loop()
        self._events: asyncio.Queue = asyncio.Queue()
        self._done = 0  # candidates that reported _Done
        self._done_indices: set[int] = set()
        # A candidate commits (under the lock) before it touches the disk or
        # starts codex; once the request has ended none may, and the end waits
        # for the committed ones only: one still waiting on an account or a
        # slow readiness probe holds nothing and never starts anything.
        self._committed: set[int] = set()
        self._ended = False
        # What the history and metrics report once it ends.
        self.admitted = False
        self.queue_wait_ms = 0
        self.codex_ms: list[int] = []
        self.accounts: list[str] = []

    def _elapsed_ms(self) -> int:
        return int((time.monotonic() - self._started) * 1000)

    def _emit(self, event) -> None:
        """From a candidate thread: hand one event to the loop."""
        self._loop.call_soon_threadsafe(self._events.put_nowait, event)

    def cancel(self, reason: str, error: ServiceError | None = None) -> None:
        """Idempotent and non-blocking (on the loop): SIGTERM goes to every
        process group now, the escalation to SIGKILL runs off the loop.
        `error`, when given, is what the caller is told instead of CANCELLED."""
        with self._lock:
            if not self._cancelled.is_set():
                self._cancel_reason = reason
                self._cancel_error = error
                self._cancelled.set()
            runs = list(self._runs)
        for run in runs:
            run.cancel()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    async def events(self) -> AsyncGenerator[Event, None]:
        spec = self.spec
        ready = self._engine.ready_without_probe()
        if ready is None:
            ready = await self._blocking.run(self._engine.require_ready)
        codex = ready.path
        ticket = self._slots.enter(spec.count)
        workdir: Path | None = None
        try:
            # Named before it exists and written to the end even if the caller
            # goes away meanwhile, so the rmtree in `finally` never races a
            # thread still creating it (that left directories behind).
            workdir = workdirs.new_path(self._work_root, spec.request_id)
            files = await shielded(self._blocking.run(_create_workdir, workdir, spec.references))
            # The references are on disk now: their bytes (over gRPC, the whole
            # request as it came) need not stay in memory, queued or not.
            self.spec = spec = dataclasses.replace(
                spec, references=tuple(dataclasses.replace(r, image=b"") for r in spec.references)
            )
            if not ticket.granted:
                yield ProgressEvent("queued", self._elapsed_ms(), queue_position=ticket.position)
                await ticket.wait(self._cancelled)
            self.admitted, self.queue_wait_ms = True, self._elapsed_ms()
            if spec.references:
                await self._blocking.run(self._check_references_decode, files)
                refs = await self._blocking.run(references.arrange, spec.references, files)
            else:
                refs = references.ReferencePlan((), ())
            permits = threading.Semaphore(ticket.n)
            for i in range(spec.count):
                threading.Thread(
                    target=self._candidate,
                    args=(i, codex, workdir, refs, permits),
                    name=f"{spec.request_id}-c{i}",
                    daemon=True,
                ).start()
            images = []
            async for event in self._collect(spec.count):
                if isinstance(event, ImageEvent):
                    images.append(event.image)
                yield event
            delivered = {f"{img.width}x{img.height}" for img in images}
            yield SummaryEvent(
                spec.request_id,
                spec.size.requested,
                delivered.pop() if len(delivered) == 1 else "mixed",
                spec.quality,
                spec.output_format,
                tuple(img.id for img in images),
                self._elapsed_ms(),
                target_size=spec.size.text,
                aspect_ratio=spec.size.ratio_text,
                aspect_source=spec.size.ratio_source,
                fit=spec.fit,
                references=refs.uses,
                background=spec.background,
            )
        except ServiceError as exc:
            if exc.kind is Kind.CANCELLED and self._cancel_error is not None:
                raise self._cancel_error from None  # e.g. UNAVAILABLE SHUTTING_DOWN
            raise
        finally:
            # Reached on success, on error and when the caller goes away (the
            # task is cancelled): stop whatever still runs and wait until it is gone.
            self.cancel(self._cancel_reason or "request ended")
            with self._lock:
                self._ended = True
                committed = set(self._committed)
            # A task of its own, awaited to its end: cancelling the caller
            # again (a second cancel, or an anyio cancel scope, which cancels
            # at every await, as the MCP route's does) cannot cut it short and
            # keep the slots.
            await shielded(self._end(committed, ticket, workdir))

    async def _end(self, committed: set[int], ticket, workdir: Path | None) -> None:
        await self._until_candidates_done(committed)
        ticket.release()
        if workdir is not None:
            # Nothing runs in it any more: the caller need not wait for the
            # disk (Blocking.close waits for it at shutdown).
            self._blocking.later(shutil.rmtree, workdir, ignore_errors=True)

    async def _until_candidates_done(self, committed: set[int]) -> None:
        """Every committed candidate thread reports _Done once its process
        group is gone: slots must not be given back while codex still runs."""
        while not committed <= self._done_indices:
            event = await self._events.get()
            if isinstance(event, _Done):
                self._done += 1
                self._done_indices.add(event.index)

    async def _collect(self, count: int) -> AsyncGenerator[Event, None]:
        first_error: ServiceError | None = None
        deadline = self._started + self._timeout_s
        while self._done < count:
            left = deadline - time.monotonic()
            if left <= 0 and first_error is None:
                first_error = ServiceError(
                    Kind.DEADLINE_EXCEEDED,
                    "CODEX_TIMEOUT",
                    f"generation took longer than {self._timeout_s:g}s and was stopped",
                )
                self.cancel("timeout")
            try:
                # Not asyncio.wait_for: on Python 3.11 a cancellation that comes
                # as the event arrives is dropped (the event is returned), and
                # the request would run on after its caller left.
                async with asyncio.timeout(max(0.05, left)):
                    event = await self._events.get()
            except TimeoutError:
                continue
            if isinstance(event, _Done):
                self._done += 1
                self._done_indices.add(event.index)
                if event.error is not None and first_error is None and not self.cancelled:
                    first_error = event.error
                    # A failed sibling fails the request: stop the others now.
                    self.cancel(f"candidate {event.index} failed")
                continue
            yield event
        if first_error is not None:
            raise first_error
        if self.cancelled:
            raise ServiceError(
                Kind.CANCELLED, "REQUEST_CANCELED", f"request cancelled ({self._cancel_reason})"
            )

    def _check_references_decode(self, files: tuple[Path, ...]) -> None:
        """The one full decode of each reference (from its file): only once the
        request holds its slots, and within the memory budget every request shares."""
        bad = []
        for ref, path in zip(self.spec.references, files, strict=True):
            info = imaging.ImageInfo(ref.mime_type, ref.width, ref.height)
            try:
                with imaging.DECODE_BUDGET.hold(imaging.decode_cost(info), self._cancelled):
                    imaging.check_decodes(path)
            except imaging.BudgetCancelled:
                raise ServiceError(Kind.CANCELLED, "REQUEST_CANCELED", "cancelled") from None
            except imaging.BadImage as exc:
                bad.append(
                    FieldViolation(f"references[{ref.index}].image", str(exc), "INVALID_REFERENCE")
                )
        if bad:
            raise invalid(bad)

    def _commit(self, index: int) -> bool:
        """From a candidate thread, before it touches the disk or starts codex:
        False once the request was cancelled or has ended (it must do neither)."""
        with self._lock:
            if self._ended or self.cancelled:
                return False
            self._committed.add(index)
            return True

    def _run_on(
        self, account, index: int, codex: str, cand_dir: Path, refs: references.ReferencePlan
    ):
        if self.cancelled:  # e.g. while the account's readiness was probed: start nothing
            raise ServiceError(Kind.CANCELLED, "REQUEST_CANCELED", "cancelled")
        run = self._engine.start(
            codex, cand_dir, list(refs.paths), prompts.build(self.spec, index, refs), account
        )
        with self._lock:
            self._runs.append(run)
            late = self.cancelled
        if late:
            run.cancel()
        self._emit(
            ProgressEvent(
                "candidate_started", self._elapsed_ms(), index, detail=f"account {account.name}"
            )
        )

        def on_phase(phase: str, detail: str) -> None:
            self._emit(ProgressEvent("codex_phase", self._elapsed_ms(), index, phase, detail))

        try:
            result = run.run(on_phase)
        finally:
            self._engine.release(run)
        with self._lock:
            self.codex_ms.append(result.duration_ms)
            if run.account not in self.accounts:
                self.accounts.append(run.account)
        return result, run

    def _candidate(
        self,
        index: int,
        codex: str,
        workdir: Path,
        refs: references.ReferencePlan,
        permits: threading.Semaphore,
    ) -> None:
        error: ServiceError | None = None
        try:
            while not permits.acquire(timeout=0.1):
                if self.cancelled:
                    break
            else:
                try:
                    self._run_candidate(index, codex, workdir, refs)
                finally:
                    permits.release()
            if self.cancelled:
                error = ServiceError(Kind.CANCELLED, "REQUEST_CANCELED", "cancelled")
        except ServiceError as exc:
            error = exc
        except Exception as exc:  # noqa: BLE001 - report, never leak a traceback to the caller
            log(
                "candidate.crashed",
                level="error",
                request_id=self.spec.request_id,
                index=index,
                error_type=type(exc).__name__,
            )
            error = ServiceError(
                Kind.INTERNAL, "INTERNAL", "internal error while running a candidate"
            )
        try:
            self._emit(_Done(index, error))
        except RuntimeError:
            pass  # the loop is closed: an uncommitted candidate outlived its server's shutdown

    def _run_candidate(
        self, index: int, codex: str, workdir: Path, refs: references.ReferencePlan
    ) -> None:
        if self.cancelled:
            return
        spec = self.spec
        cand_dir = workdir / f"candidate-{index + 1}"
        tried: set[str] = set()
        while True:
            held = self._engine.accounts.acquire(self._cancelled, frozenset(tried))
            try:
                if not tried:
                    if not self._commit(index):
                        return  # the account goes back in `finally`
                    cand_dir.mkdir()
                result, run = self._run_on(held.account, index, codex, cand_dir, refs)
                break
            except ServiceError as exc:
                # Nothing was produced: skip this account until its reset and
                # try the candidate on another one.
                if exc.reason != "QUOTA_EXHAUSTED" or not self._engine.accounts.exhausted(
                    held, exc
                ):
                    raise
                tried.add(held.account.name)
                log(
                    "candidate.account_exhausted",
                    request_id=spec.request_id,
                    index=index,
                    account=held.account.name,
                )
            finally:
                self._engine.accounts.release(held)
        # The model draws at its own size (codex asks for "auto"): deliver the
        # asked-for one, unless the caller wants the model's own image; a
        # transparent background is made real first (transparency.py).
        native = result.info
        finished = finishing.finish(spec, result.data, native)
        delivered, made = finished.delivered, finished.transparent
        data, info = delivered.data, delivered.info
        if self.cancelled:
            return  # nothing is stored for a request that was given up
        stored = self._store.save(
            data,
            request_id=spec.request_id,
            index=index,
            label=f"Candidate {index + 1}",
            mime_type=info.mime_type,
            width=info.width,
            height=info.height,
            revised_prompt=result.revised_prompt,
            thread_id=result.thread_id,
            prompt=spec.prompt,
            requested_size=spec.size.requested,
            resolved_size=f"{info.width}x{info.height}",
            aspect=spec.aspect,
            quality=spec.quality,
            output_format=spec.output_format,
            duration_ms=result.duration_ms,
            created_unix_ms=int(time.time() * 1000),
            target_size=spec.size.text,
            aspect_ratio=spec.size.ratio_text,
            aspect_source=spec.size.ratio_source,
            fit=spec.fit,
            native_width=native.width,
            native_height=native.height,
            resized=delivered.resized,
            enlarged=delivered.enlarged,
            references=tuple(dataclasses.asdict(u) for u in refs.uses),
            key_name=self._origin.key_name,
            account=run.account,
            request_seq=self._origin.request_seq,
            background=spec.background,
            alpha_source=made.alpha_source if made else "",
            transparency=dataclasses.asdict(made.figures) if made else None,
            usage=result.usage,
        )
        self._emit(
            ProgressEvent(
                "candidate_finished",
                self._elapsed_ms(),
                index,
                detail=f"{info.width}x{info.height} {info.mime_type}"
                + (f" (resized from {native.width}x{native.height})" if delivered.resized else ""),
            )
        )
        self._emit(ImageEvent(stored))
