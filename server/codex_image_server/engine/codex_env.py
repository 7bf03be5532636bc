"""The one place codex's environment is built: an allowlist, not a denylist.

Every codex process, and every shell the model runs inside it, sees this
environment; a prompt (or an instruction hidden in a reference image) can
make the model print it. So codex gets only what it needs to run: where it
is (PATH, HOME, CODEX_HOME), how to talk (locale, terminal, temp dir), how
to reach its upstream (proxy and CA-bundle variables), and the API key
variable(s) its own config names (`env_key` of `[model_providers.*]`).
Cloud credentials, database URLs, tokens and our own settings stay with the
server. An operator adds names with `--codex-env-allow NAME` (or `PREFIX*`).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

from codex_image_server.engine.image_locator import codex_home

# What codex (and the Node wrapper that may start it) needs to run.
BASE = ("PATH", "HOME", "CODEX_HOME", "LANG", "LANGUAGE", "TZ", "TERM", "TMPDIR")
PROXY = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY")
# Read by codex's HTTP client (CODEX_CA_CERTIFICATE, SSL_CERT_FILE/DIR), the
# Node wrapper (NODE_EXTRA_CA_CERTS) and Python tools the model may run.
CA_BUNDLES = (
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
    "REQUESTS_CA_BUNDLE",
    "CODEX_CA_CERTIFICATE",
)
ALWAYS = frozenset(BASE + PROXY + tuple(p.lower() for p in PROXY) + CA_BUNDLES)
ALWAYS_PREFIXES = ("LC_",)  # the locale categories


def check_allow(entries: tuple[str, ...]) -> None:
    """Refuse an allowlist entry that is no variable name (or a bare `*`,
    which would hand codex everything again); ValueError says which."""
    for entry in entries:
        name = entry[:-1] if entry.endswith("*") else entry
        if not name or not all(c.isalnum() or c == "_" for c in name):
            raise ValueError(f"codex_env_allow: {entry!r} is not a variable name or a NAME_PREFIX*")


def _matcher(allow: tuple[str, ...]):
    names = ALWAYS | {e for e in allow if not e.endswith("*")}
    prefixes = ALWAYS_PREFIXES + tuple(e[:-1] for e in allow if e.endswith("*"))
    return lambda name: name in names or name.startswith(prefixes)


def provider_keys(home: Path, overrides: tuple[str, ...] = ()) -> set[str]:
    """The variables codex's config says hold its providers' API keys: each
    `[model_providers.NAME] env_key` in $CODEX_HOME/config.toml, and each
    `-c model_providers.NAME.env_key=...` override."""
    keys: set[str] = set()
    try:
        config = tomllib.loads((home / "config.toml").read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        config = {}
    providers = config.get("model_providers")
    if isinstance(providers, dict):
        keys.update(
            p["env_key"]
            for p in providers.values()
            if isinstance(p, dict) and isinstance(p.get("env_key"), str)
        )
    for item in overrides:
        key, _, value = item.partition("=")
        parts = key.strip().split(".")
        if len(parts) == 3 and parts[0] == "model_providers" and parts[2] == "env_key":
            keys.add(value.strip().strip("'\""))
    return {k for k in keys if k}


def environment(
    home: Path | None = None,
    *,
    allow: tuple[str, ...] = (),
    overrides: tuple[str, ...] = (),
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment for a codex run on `home` (default: the inherited
    CODEX_HOME), from `base` (default: the server's own)."""
    base = os.environ if base is None else base
    allowed = _matcher(allow)
    env = {k: v for k, v in base.items() if allowed(k)}
    if home is not None:
        env["CODEX_HOME"] = str(home)
    for key in provider_keys(codex_home(env), overrides):
        if key in base:
            env[key] = base[key]
    return env
