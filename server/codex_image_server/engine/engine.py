"""Engine: starts candidate runs of codex and guarantees none outlives us."""

from __future__ import annotations

import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from codex_image_server.engine import binary, codex_env
from codex_image_server.engine.accounts import Account, AccountPool
from codex_image_server.engine.candidate import CandidateRun
from codex_image_server.engine.cleanup import remove_thread_files
from codex_image_server.engine.group_records import RUN_ID_ENV, GroupRecords
from codex_image_server.engine.process_group import ProcessGroup, become_subreaper
from codex_image_server.engine.readiness import Readiness, ReadinessCache
from codex_image_server.engine.reaper import ReaperThread
from codex_image_server.engine.tool_surface import codex_arguments
from codex_image_server.errors import Kind, ServiceError, shutting_down
from codex_image_server.request import sizes
from codex_image_server.settings import Settings


def prompt_file(prompt: str):
    """The prompt as codex's stdin: an unlinked regular file, so no length
    hits ARG_MAX (128 KiB per argument) and codex never waits on a pipe.
    Measured on 0.169.0: `exec -- -` reads a regular-file stdin as the prompt."""
    f = tempfile.TemporaryFile()
    f.write(prompt.encode("utf-8"))
    f.seek(0)
    return f


class Engine:
    def __init__(self, settings: Settings, *, reap_orphans: bool = True):
        self.settings = settings
        # Lets us reap the grandchildren of a codex group after its leader dies.
        # Not inside another program (the tests' in-process server): its reaper
        # would take the exit status of that program's own children. The engine
        # then works as where there is no subreaper (orphans go to init).
        self.subreaper = become_subreaper() if reap_orphans else False
        self.reaper = ReaperThread()
        if self.subreaper:
            self.reaper.start()
        self.records = GroupRecords(settings.state_dir)
        self.accounts = AccountPool.from_settings(
            settings.accounts,
            settings.max_concurrent,
            lambda home: ReadinessCache(
                settings.codex_bin,
                settings.codex_config,
                settings.codex_profile,
                settings.readiness_ttl_ms / 1000,
                home,
                settings.codex_env_allow,
            ),
        )
        self.readiness = _PoolReadiness(self.accounts)
        self._lock = threading.Lock()
        self._live: dict[int, CandidateRun] = {}
        self._closed = False
        # Removing codex's copies (unlinking a multi-MB image, a rollout) is
        # no part of the answer: one thread does it after, shutdown waits for it.
        self._copies = ThreadPoolExecutor(max_workers=1, thread_name_prefix="codex-copies")

    @property
    def grace_s(self) -> float:
        return self.settings.kill_grace_ms / 1000

    def sweep_leftovers(self) -> list[int]:
        """Kill codex runs that an earlier server, now dead, left behind."""
        return self.records.sweep()

    def require_ready(self) -> Readiness:
        ready = self.readiness.get()
        if not ready.ready:
            ready = self.readiness.get(fresh=True)  # the user may just have logged in
        if not ready.ready:
            reason = (
                "CODEX_NOT_FOUND"
                if not ready.found
                else ("CODEX_NOT_LOGGED_IN" if not ready.logged_in else "CODEX_UNUSABLE")
            )
            raise ServiceError(Kind.FAILED_PRECONDITION, reason, ready.problem)
        return ready

    def ready_without_probe(self) -> Readiness | None:
        """`require_ready`'s answer when it needs no probe (ready, within the
        readiness TTL), else None: cheap enough for the event loop."""
        ready = self.accounts.fresh_readiness()
        return ready if ready is not None and ready.ready else None

    def argv(self, codex: str, workdir: Path, images: list[Path]) -> list[str]:
        argv = [
            codex,
            "exec",
            "--json",
            "--skip-git-repo-check",
            "--sandbox",
            "read-only",
            "--cd",
            str(workdir),
            "--color",
            "never",
        ]
        for override in self.settings.codex_config:
            argv += ["-c", override]
        if self.settings.codex_profile:
            argv += ["--profile", self.settings.codex_profile]
        argv += codex_arguments()  # after the operator's own: the model gets the image tool alone
        # `--image=PATH` with '=': a bare -i would swallow what follows.
        argv += [f"--image={p.resolve()}" for p in images]
        return argv + ["--", "-"]  # the prompt comes on stdin

    def start(
        self,
        codex: str,
        workdir: Path,
        images: list[Path],
        prompt: str,
        account: Account | None = None,
    ) -> CandidateRun:
        with self._lock:
            if self._closed:
                raise shutting_down()
            run_id = self.records.add()
            env = codex_env.environment(
                account.spec.home if account else None,
                allow=self.settings.codex_env_allow,
                overrides=self.settings.codex_config,
            )
            env[RUN_ID_ENV] = run_id
            try:
                with prompt_file(prompt) as stdin:
                    group = ProcessGroup(
                        self.argv(codex, workdir, images), str(workdir), env, stdin=stdin
                    )
            except OSError as exc:
                self.records.remove(run_id)
                raise ServiceError(
                    Kind.FAILED_PRECONDITION,
                    "CODEX_SPAWN_FAILED",
                    f"could not start codex ({codex}): {exc.strerror or exc}. "
                    f"Run `{binary.install_command()}` or set CODEX_IMAGE_SERVER_CODEX_BIN.",
                ) from None
            run = CandidateRun(
                group,
                env,
                self.grace_s,
                sizes.OUTPUT_PIXEL_LIMIT,
                run_id,
                finish_early=self.settings.finish_early,
                account=account.name if account else "default",
                remove_copies=self._remove_copies if self.settings.remove_codex_copies else None,
                codex_version=_version_of(account),
            )
            self._live[group.pid] = run
            return run

    def _remove_copies(self, home: Path, thread_id: str) -> None:
        try:
            self._copies.submit(remove_thread_files, home, thread_id)
        except RuntimeError:  # shut down: at once, then
            remove_thread_files(home, thread_id)

    def release(self, run: CandidateRun) -> None:
        """Called once the run's process group is gone."""
        with self._lock:
            self._live.pop(run.group.pid, None)
        self.records.remove(run.run_id)
        self.reaper.nudge()

    @property
    def running(self) -> int:
        with self._lock:
            return len(self._live)

    def shutdown(self) -> None:
        """Stop every run now and wait until each process group is gone."""
        with self._lock:
            self._closed = True
            runs = list(self._live.values())
        for run in runs:
            run.cancel()
        for run in runs:
            # Not finish(): the candidate's own thread still reads the pipes.
            run.group.wait_stopped(self.grace_s)
            self.release(run)
        self._copies.shutdown(wait=True)


def _version_of(account: Account | None) -> str:
    ready = account.readiness.cached() if account is not None else None
    return ready.version if ready is not None else ""


class _PoolReadiness:
    """`engine.readiness.get()` as before: ready when some account can generate."""

    def __init__(self, pool: AccountPool):
        self._pool = pool

    def get(self, fresh: bool = False) -> Readiness:
        return self._pool.readiness(fresh)

    def cached(self) -> Readiness | None:
        return self._pool.cached_readiness()
