"""One Generate request: its candidates run side by side, their events come
out as one stream, and any way it ends (done, failed, cancelled, timed out)
leaves no codex process, no working directory and no held slot behind."""
from __future__ import annotations

import dataclasses
import queue
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator, Union

from . import finishing, imaging
from .engine import Engine
from .engine import prompt as prompts
from .engine.candidate import CandidateRun
from .errors import Kind, ServiceError
from .logs import log
from .output_store import OutputStore, StoredImage
from .request import GenerationSpec
from .slots import Slots

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
    background: str = "auto"
    status: str = "completed"
    model: str = MODEL
    backend: str = BACKEND


Event = Union[ProgressEvent, ImageEvent, SummaryEvent]


@dataclasses.dataclass(frozen=True)
class _Done:
    index: int
    error: ServiceError | None


class Generation:
    def __init__(self, spec: GenerationSpec, engine: Engine, store: OutputStore, slots: Slots,
                 work_root: Path, timeout_s: float):
        self.spec = spec
        self._engine = engine
        self._store = store
        self._slots = slots
        self._work_root = work_root
        self._timeout_s = timeout_s
        self._started = time.monotonic()
        self._cancelled = threading.Event()
        self._cancel_reason = ""
        self._lock = threading.Lock()
        self._runs: list[CandidateRun] = []
        self._events: queue.Queue = queue.Queue()

    def _elapsed_ms(self) -> int:
        return int((time.monotonic() - self._started) * 1000)

    def cancel(self, reason: str) -> None:
        """Idempotent and non-blocking: SIGTERM goes to every process group now."""
        with self._lock:
            if not self._cancelled.is_set():
                self._cancel_reason = reason
                self._cancelled.set()
            runs = list(self._runs)
        for run in runs:
            run.cancel()
        self._slots.wake()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def events(self) -> Iterator[Event]:
        spec = self.spec
        codex = self._engine.require_ready().path
        ticket = self._slots.enter(spec.count)
        workdir: Path | None = None
        threads: list[threading.Thread] = []
        try:
            if not ticket.granted:
                yield ProgressEvent("queued", self._elapsed_ms(), queue_position=ticket.position)
                ticket.wait(self._cancelled)
            workdir = self._prepare_workdir()
            refs = self._write_references(workdir)
            permits = threading.Semaphore(ticket.n)
            for i in range(spec.count):
                t = threading.Thread(target=self._candidate, args=(i, codex, workdir, refs, permits),
                                     name=f"{spec.request_id}-c{i}", daemon=True)
                t.start()
                threads.append(t)
            images = yield from self._collect(spec.count)
            yield SummaryEvent(spec.request_id, spec.size.requested, spec.size.text, spec.quality,
                               spec.output_format, tuple(img.id for img in images), self._elapsed_ms(),
                               spec.background)
        finally:
            # Reached on success, on error and when the caller closes the
            # stream early: stop whatever still runs and wait until it is gone.
            self.cancel(self._cancel_reason or "request ended")
            for t in threads:
                t.join()
            ticket.release()
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)

    def _collect(self, count: int):
        images: list[StoredImage] = []
        first_error: ServiceError | None = None
        remaining = count
        deadline = self._started + self._timeout_s
        while remaining:
            left = deadline - time.monotonic()
            if left <= 0 and first_error is None:
                first_error = ServiceError(Kind.DEADLINE_EXCEEDED, "CODEX_TIMEOUT",
                                           f"generation took longer than {self._timeout_s:g}s and was stopped")
                self.cancel("timeout")
            try:
                event = self._events.get(timeout=max(0.05, min(left, 0.5)))
            except queue.Empty:
                continue
            if isinstance(event, _Done):
                remaining -= 1
                if event.error is not None and first_error is None and not self.cancelled:
                    first_error = event.error
                    # A failed sibling fails the request: stop the others now.
                    self.cancel(f"candidate {event.index} failed")
                continue
            if isinstance(event, ImageEvent):
                images.append(event.image)
            yield event
        if first_error is not None:
            raise first_error
        if self.cancelled:
            raise ServiceError(Kind.CANCELLED, "REQUEST_CANCELED", f"request cancelled ({self._cancel_reason})")
        return images

    def _prepare_workdir(self) -> Path:
        self._work_root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{self.spec.request_id}-", dir=self._work_root))

    def _write_references(self, workdir: Path) -> list[Path]:
        """Byte for byte: the upstream must receive the originals."""
        paths = []
        if self.spec.references:
            (workdir / "references").mkdir()
        for ref in self.spec.references:
            path = workdir / "references" / f"reference-{ref.index + 1}.{imaging.EXTENSION_BY_MIME[ref.mime_type]}"
            path.write_bytes(ref.image)
            paths.append(path.resolve())
        return paths

    def _candidate(self, index: int, codex: str, workdir: Path, refs: list[Path],
                   permits: threading.Semaphore) -> None:
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
            log("candidate.crashed", level="error", request_id=self.spec.request_id, index=index,
                error_type=type(exc).__name__)
            error = ServiceError(Kind.INTERNAL, "INTERNAL", "internal error while running a candidate")
        self._events.put(_Done(index, error))

    def _run_candidate(self, index: int, codex: str, workdir: Path, refs: list[Path]) -> None:
        if self.cancelled:
            return
        spec = self.spec
        cand_dir = workdir / f"candidate-{index + 1}"
        cand_dir.mkdir()
        run = self._engine.start(codex, cand_dir, refs, prompts.build(spec, index, refs))
        with self._lock:
            self._runs.append(run)
            late = self.cancelled
        if late:
            run.cancel()
        self._events.put(ProgressEvent("candidate_started", self._elapsed_ms(), index))

        def on_phase(phase: str, detail: str) -> None:
            self._events.put(ProgressEvent("codex_phase", self._elapsed_ms(), index, phase, detail))

        try:
            result = run.run(on_phase)
        finally:
            self._engine.release(run)
        finished = finishing.finish(spec, result.data, result.info)
        data, info, made = finished.data, finished.info, finished.transparent
        if self.cancelled:
            return  # nothing is stored for a request that was given up
        stored = self._store.save(
            data, request_id=spec.request_id, index=index, label=f"Candidate {index + 1}",
            mime_type=info.mime_type, width=info.width, height=info.height,
            revised_prompt=result.revised_prompt, thread_id=result.thread_id, prompt=spec.prompt,
            requested_size=spec.size.requested, resolved_size=spec.size.text, aspect=spec.aspect,
            quality=spec.quality, output_format=spec.output_format, duration_ms=result.duration_ms,
            created_unix_ms=int(time.time() * 1000), background=spec.background,
            alpha_source=made.alpha_source if made else "",
            transparency=dataclasses.asdict(made.figures) if made else None, usage=result.usage)
        self._events.put(ProgressEvent("candidate_finished", self._elapsed_ms(), index,
                                       detail=f"{info.width}x{info.height} {info.mime_type}"))
        self._events.put(ImageEvent(stored))
