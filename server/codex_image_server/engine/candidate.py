"""One candidate: one `codex exec` run, from spawn to the image bytes it made."""

from __future__ import annotations

import dataclasses
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from codex_image_server.engine import events, failures
from codex_image_server.engine.image_locator import (
    Found,
    codex_home,
    find_rollout,
    locate,
    read_rollout,
)
from codex_image_server.engine.image_watch import FinalImage, RolloutWatch
from codex_image_server.engine.process_group import ProcessGroup
from codex_image_server.errors import Kind, ServiceError
from codex_image_server.request import imaging
from codex_image_server.runtime.logs import log as log_event

# Called with (phase, detail) as codex reports its own progress.
PhaseCallback = Callable[[str, str], None]

_STDERR_TAIL_LINES = 40
_EXIT_AFTER_EOF_S = 5.0
# Codex exited: what it wrote is in the pipe already, read in far less than
# this. An output still open after it is held by a process codex left behind.
_EOF_AFTER_EXIT_S = 0.5
_EXIT_POLL_S = 0.05


@dataclasses.dataclass
class CandidateResult:
    data: bytes
    thread_id: str
    revised_prompt: str
    duration_ms: int
    source: str
    info: imaging.ImageInfo
    usage: dict | None = None


class CandidateRun:
    """Spawned by the Engine; `run` blocks until the image is found or it fails."""

    def __init__(
        self,
        group: ProcessGroup,
        env: dict[str, str],
        grace_s: float,
        max_pixels: int,
        run_id: str,
        finish_early: bool = True,
        account: str = "default",
        remove_copies: Callable[[Path, str], None] | None = None,
        codex_version: str = "",
    ):
        self.group = group
        # `codex --version` of the binary run, for an error naming it.
        self._codex_version = codex_version
        self.account = account
        # Given codex's home and the thread id once the run is over (the Engine's: after the
        # answer).
        self._remove_copies = remove_copies
        self._finish_early = finish_early
        # Set when the image was final and codex was stopped before its closing turn.
        self.finished_early = threading.Event()
        self._final: FinalImage | None = None
        self.run_id = run_id
        self._env = env
        self._grace = grace_s
        self._max_pixels = max_pixels
        self._stderr_tail: deque[str] = deque(maxlen=_STDERR_TAIL_LINES)
        self._session_id = ""
        self._stderr_reader = threading.Thread(
            target=self._drain_stderr, daemon=True, name=f"stderr-{group.pid}"
        )
        self._stderr_reader.start()

    def _drain_stderr(self) -> None:
        # Codex must never block on a full stderr pipe; keep only a short tail.
        stderr = self.group.proc.stderr
        assert stderr is not None  # spawned with stderr=PIPE
        for raw in iter(stderr.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            if line.startswith("session id:") and not self._session_id:
                self._session_id = line.split(":", 1)[1].strip()
            self._stderr_tail.append(line)

    def cancel(self) -> None:
        self.group.stop_async(self._grace)

    def _image_final(self, final: FinalImage) -> None:
        # The image is whole: the closing turn would only cost time and tokens.
        self._final = final
        self.finished_early.set()
        self.group.stop_async(self._grace)

    def _end_with_the_leader(self, output_ended: threading.Event) -> None:
        """The run ends when codex exits: a process it left behind holding its
        output open (a tool shell in a session of its own) is stopped, so the
        reader sees the end instead of waiting for that process, or the
        request's deadline."""
        while self.group.proc.poll() is None:
            if output_ended.wait(_EXIT_POLL_S):
                return
        if output_ended.wait(_EOF_AFTER_EXIT_S):
            return
        log_event(
            "candidate.output_held_after_exit",
            level="warning",
            run_id=self.run_id,
            pid=self.group.pid,
        )
        self.group.stop_leftovers(self._grace)

    def run(self, on_phase: PhaseCallback) -> CandidateResult:
        started = time.monotonic()
        log = events.TurnLog()
        watch: RolloutWatch | None = None
        output_ended = threading.Event()
        threading.Thread(
            target=self._end_with_the_leader,
            args=(output_ended,),
            daemon=True,
            name=f"exit-{self.group.pid}",
        ).start()
        try:
            # Read stdout to its end: closing it early kills codex before the
            # image is written.
            stdout = self.group.proc.stdout
            assert stdout is not None  # spawned with stdout=PIPE
            for raw in iter(stdout.readline, b""):
                event = events.parse_line(raw.decode("utf-8", "replace"))
                if event is None:
                    continue
                shown = events.absorb(log, event)
                if self._finish_early and watch is None and log.thread_id:
                    watch = RolloutWatch(
                        codex_home(self._env), log.thread_id, self._image_final
                    ).start()
                if shown and not self.group.stop_requested:
                    on_phase(*shown)
            try:
                self.group.proc.wait(timeout=_EXIT_AFTER_EOF_S)
            except subprocess.TimeoutExpired:
                pass  # a leader that closed its output but hangs: finish() stops it
        finally:
            output_ended.set()
            if watch is not None:
                watch.stop()
            self.group.finish(self._grace)
            self._stderr_reader.join(timeout=1.0)
        try:
            if self.finished_early.is_set():
                on_phase("image.final", "image complete; codex stopped before its closing turn")
            elif self.group.stop_requested:
                raise ServiceError(Kind.CANCELLED, "REQUEST_CANCELED", "candidate cancelled")
            return self._result(log, started)
        finally:
            # The image is in memory (or the run failed): codex's copies go.
            if self._remove_copies is not None:
                self._remove_copies(codex_home(self._env), log.thread_id or self._session_id)

    def _take_final(self) -> Found | None:
        """The image the rollout watcher saw completed: no need to parse the
        whole rollout (tens of MB of base64) again."""
        if self._final is None:
            return None
        if self._final.data:
            return Found(self._final.data, "rollout.final", self._final.revised_prompt)
        try:
            return Found(
                Path(self._final.saved_path).read_bytes(),
                "rollout.final",
                self._final.revised_prompt,
            )
        except OSError:
            return None

    def _result(self, log: events.TurnLog, started: float) -> CandidateResult:
        exit_code = self.group.proc.returncode
        thread_id = log.thread_id or self._session_id
        home = codex_home(self._env)
        found = self._take_final()
        if found is None:
            facts = read_rollout(find_rollout(home, thread_id) if thread_id else None)
            found = locate(home, thread_id, facts)
        if found is None and facts.unsupported:
            raise failures.unsupported(facts.cli_version or self._codex_version, facts.unsupported)
        if found is None:
            stderr = list(self._stderr_tail)
            texts = [log.turn_failed] + log.errors + facts.failures + stderr + [log.last_message]
            error = failures.quota_error(texts) or failures.tool_failure(facts.failures + stderr)
            if error:
                raise error
            if log.turn_failed or exit_code:
                reason = (
                    log.turn_failed
                    or (log.errors[-1] if log.errors else "")
                    or next(
                        (line for line in reversed(stderr) if "ERROR" in line),
                        stderr[-1] if stderr else "",
                    )
                )
                raise failures.failed_turn(reason, exit_code)
            raise failures.no_image(log.last_message)
        try:
            info = imaging.inspect(found.data, self._max_pixels)
        except imaging.BadImage as exc:
            raise ServiceError(
                Kind.INTERNAL,
                "CODEX_INVALID_IMAGE",
                f"codex produced a file that is not a usable image: {exc}",
            ) from None
        return CandidateResult(
            found.data,
            thread_id,
            found.revised_prompt,
            int((time.monotonic() - started) * 1000),
            found.source,
            info,
            log.usage,
        )
