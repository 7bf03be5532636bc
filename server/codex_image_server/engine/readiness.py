"""Can codex generate right now? Binary found, its version, logged in (or a
custom provider configured, as the offline tests do). Probes cost a codex
start each, so results are cached for a short while."""

from __future__ import annotations

import dataclasses
import subprocess
import threading
import time
import tomllib
from pathlib import Path

from codex_image_server.engine import binary, codex_env, reaper, versions
from codex_image_server.engine.image_locator import codex_home


@dataclasses.dataclass(frozen=True)
class Readiness:
    found: bool
    path: str = ""
    version: str = ""
    logged_in: bool = False
    custom_provider: bool = False
    problem: str = ""
    # Said beside a ready answer, never a reason not to serve (an untested codex may work).
    warning: str = ""
    fix: str = ""  # the one command that makes it ready, when it is not

    @property
    def ready(self) -> bool:
        return self.found and (self.logged_in or self.custom_provider) and not self.problem

    @property
    def version_number(self) -> str:
        return versions.number(self.version)

    @property
    def version_tested(self) -> bool:
        return versions.tested(self.version)

    @property
    def said(self) -> str:
        """`problem`, then the warning: what health's `problem` carries."""
        return "\n".join(text for text in (self.problem, self.warning) if text)


def _run(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr): codex prints warnings on stderr, e.g. about
    PATH aliases when CODEX_HOME is under /tmp."""
    try:
        done = reaper.run(
            argv, timeout=30, env=env, stdin=subprocess.DEVNULL, start_new_session=True
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return -1, "", str(exc)
    return (
        done.returncode,
        done.stdout.decode("utf-8", "replace").strip(),
        done.stderr.decode("utf-8", "replace").strip(),
    )


def _custom_provider(home: Path, overrides: tuple[str, ...], profile: str) -> bool:
    for item in overrides:
        key, _, value = item.partition("=")
        if key.strip() == "model_provider" and value.strip().strip("\"'") not in ("", "openai"):
            return True
    files = [home / "config.toml"] + ([home / f"{profile}.config.toml"] if profile else [])
    for path in files:
        try:
            config = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError):
            continue
        sections = [config] + ([config.get("profiles", {}).get(profile, {})] if profile else [])
        if any(
            s.get("model_provider") not in (None, "openai") for s in sections if isinstance(s, dict)
        ):
            return True
    return False


def probe(
    configured_bin: str, overrides: tuple[str, ...], profile: str, env: dict[str, str]
) -> Readiness:
    path = binary.resolve(configured_bin)
    if not path:
        where = (
            f"CODEX_IMAGE_SERVER_CODEX_BIN={configured_bin}"
            if configured_bin
            else "the project or PATH"
        )
        fix = binary.install_command()
        return Readiness(
            False,
            problem=(
                f"codex CLI not found in {where}. Run `{fix}` (installs the pinned @openai/codex@"
                f"{binary.PINNED_VERSION}; tested versions: {versions.tested_range()}) or set "
                "CODEX_IMAGE_SERVER_CODEX_BIN to a codex binary."
            ),
            fix=fix,
        )
    code, out, err = _run([path, "--version"], env)
    if code != 0:
        return Readiness(True, path, problem=f"`{path} --version` failed: {(err or out)[:200]}")
    version = out.splitlines()[-1].strip() if out else ""
    code, _, _ = _run([path, "login", "status"], env)
    custom = _custom_provider(codex_home(env), overrides, profile)
    logged_in = code == 0
    problem = fix = ""
    if not logged_in and not custom:
        home = codex_home(env)
        # Another CODEX_HOME than codex's own default is part of the command.
        fix = binary.login_command(path)
        if home.resolve() != (Path.home() / ".codex").resolve():
            fix = f"CODEX_HOME={home} {fix}"
        problem = (
            f"codex is not logged in. Run `{fix}` and sign in with ChatGPT "
            f"(CODEX_HOME={home}); image generation needs a ChatGPT login."
        )
    return Readiness(
        True, path, version, logged_in, custom, problem, warning=versions.warning(version), fix=fix
    )


class ReadinessCache:
    def __init__(
        self,
        configured_bin: str,
        overrides: tuple[str, ...],
        profile: str,
        ttl_s: float,
        home: Path | None = None,
        env_allow: tuple[str, ...] = (),
    ):
        self._args = (configured_bin, overrides, profile)
        self._env_allow = env_allow
        self._home = home
        self._ttl = ttl_s
        self._lock = threading.Lock()
        self._value: Readiness | None = None
        self._at = 0.0

    def cached(self) -> Readiness | None:
        """The last probe's answer, without probing (None before the first)."""
        return self._value

    def fresh(self) -> Readiness | None:
        """What `get` would answer without probing (the last answer, within
        its TTL), else None: safe to ask from the event loop."""
        value, at = self._value, self._at
        return value if value is not None and time.monotonic() - at <= self._ttl else None

    def get(self, fresh: bool = False) -> Readiness:
        with self._lock:
            if fresh or self._value is None or time.monotonic() - self._at > self._ttl:
                env = codex_env.environment(
                    self._home, allow=self._env_allow, overrides=self._args[1]
                )
                self._value = probe(*self._args, env)
                self._at = time.monotonic()
            return self._value
