"""Every setting of the server, read once from flags and CODEX_IMAGE_SERVER_* variables.

Flags win over variables, variables over defaults. docs/operating.md's
settings table mirrors `FIELDS` below (tests/test_docs.py names any row missing).
"""
from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from codex_image_server.version import __version__

PREFIX = "CODEX_IMAGE_SERVER_"
MAX_REFERENCES = 16  # the Photoshop plugin's own limit


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "codex-image-server"


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "codex-image-server"


@dataclasses.dataclass(frozen=True)
class Settings:
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 17342
    http_host: str = "127.0.0.1"
    http_port: int = 17341
    http_enabled: bool = True
    codex_bin: str = ""
    codex_profile: str = ""
    codex_config: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    output_dir: Path = dataclasses.field(default_factory=lambda: _default_data_dir() / "images")
    state_dir: Path = dataclasses.field(default_factory=_default_state_dir)
    max_concurrent: int = 4
    queue_limit: int = 16
    kill_grace_ms: int = 3000
    generation_timeout_ms: int = 600_000
    api_keys: tuple[str, ...] = ()
    keys_file: Path | None = None
    retention_max_age_s: int = 0
    retention_max_bytes: int = 0
    retention_interval_ms: int = 300_000
    database_url: str = ""
    object_store: str = ""
    s3_endpoint: str = ""
    s3_region: str = ""
    lease_ms: int = 15_000
    query_budget_ms: int = 1_000
    remove_codex_copies: bool = True
    metrics_auth: str = "remote"
    allow_unauthenticated_remote: bool = False
    max_references: int = 16
    max_reference_bytes: int = 20 * 1024 * 1024
    max_reference_pixels: int = 64_000_000
    max_prompt_chars: int = 32_000
    # 80 MB of images, base64 in JSON, plus room for the rest: e.g. 16
    # references of 5 MB or 4 of 20 MB. It, not the count, bounds the memory
    # one HTTP request can take (the shim holds the body, its decoded images
    # and the gRPC message at once).
    http_max_body_bytes: int = 4 * 20 * 1024 * 1024 * 4 // 3 + 1024 * 1024
    readiness_ttl_ms: int = 10_000
    mcp_reference_dir: tuple[str, ...] = ()
    mcp_inline_max_bytes: int = 3_750_000
    finish_early: bool = True
    download_idle_timeout_ms: int = 30_000
    # The HTTP port's own limits (docs/security-limits.md): time to send a
    # request's headers, longest pause in a body, idle time between requests
    # on a kept-alive connection, connections one address may hold.
    http_header_timeout_ms: int = 10_000
    http_body_timeout_ms: int = 30_000
    http_keepalive_timeout_ms: int = 75_000
    http_max_connections_per_address: int = 64
    http_max_loopback_connections: int = 1024
    blocking_threads: int = 4
    ready_file: str = ""
    log_level: str = "info"
    codex_env_allow: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    webhook_secret: str = ""
    webhook_allow: tuple[str, ...] = ()
    webhook_retry_ms: int = 300_000
    banner: bool | None = None  # None: when stderr is a terminal

    @property
    def keys_path(self) -> Path:
        return self.keys_file or self.state_dir / "keys.json"

    @property
    def auth_required(self) -> bool:
        """A key is needed: one given as a setting, or named keys in the keys file."""
        return bool(self.api_keys) or _has_named_keys(self.keys_path)

    @property
    def max_request_bytes(self) -> int:
        """Largest gRPC request the server takes: every reference at its
        largest, plus room for the prompt (4 bytes a character at most) and the rest."""
        return self.max_references * self.max_reference_bytes + 4 * self.max_prompt_chars + 4 * 1024 * 1024

    @property
    def http_max_text_body_bytes(self) -> int:
        """Largest HTTP body of a request that carries no images (the OpenAI
        generations route): the longest prompt at 12 bytes a character (a
        surrogate pair as two JSON escapes), plus 64 KiB for the other fields."""
        return min(self.http_max_body_bytes, 12 * self.max_prompt_chars + 64 * 1024)

    @property
    def work_dir(self) -> Path:
        """Requests' working directories (see workdirs.py)."""
        return self.state_dir / "work"



# name, type, help. The env variable is PREFIX + NAME.upper().
FIELDS: list[tuple[str, type, str]] = [
    ("grpc_host", str, "address the gRPC server binds"),
    ("grpc_port", int, "gRPC port (0 picks a free one)"),
    ("http_host", str, "address the HTTP shim binds"),
    ("http_port", int, "HTTP shim port (0 picks a free one)"),
    ("http_enabled", bool, "start the /v1 HTTP shim beside the gRPC server"),
    ("codex_bin", str, "the codex binary to run"),
    ("codex_profile", str, "codex config profile passed as --profile"),
    ("codex_config", list, "extra codex -c key=value overrides; repeatable; variable: one per line"),
    ("accounts", list, "Codex accounts as NAME=PATH or NAME:N=PATH (a CODEX_HOME each, N runs at once); "
                       "repeatable; variable: one per line"),
    ("output_dir", Path, "where finished images and their metadata are kept"),
    ("state_dir", Path, "working directories and the record of running codex process groups"),
    ("max_concurrent", int, "codex processes allowed to run at once"),
    ("queue_limit", int, "requests allowed to wait for a slot; beyond it RESOURCE_EXHAUSTED"),
    ("kill_grace_ms", int, "SIGTERM to SIGKILL grace when cancelling codex"),
    ("generation_timeout_ms", int, "longest a generation may run"),
    ("api_keys", list, "API keys; when set, every call but health needs one; repeatable; variable: comma "
                       "separated"),
    ("retention_max_age_s", int, "delete stored images older than this many seconds (0: keep)"),
    ("retention_max_bytes", int, "delete the oldest stored images while the store holds more bytes (0: no cap)"),
    ("retention_interval_ms", int, "how often the retention sweeper runs"),
    ("database_url", str, "postgresql://… index shared by several replicas"),
    ("object_store", str, "s3://bucket/prefix for images shared by several replicas"),
    ("s3_endpoint", str, "S3 API URL for --object-store; keys from AWS_ACCESS_KEY_ID and "
                         "AWS_SECRET_ACCESS_KEY"),
    ("s3_region", str, "S3 region for --object-store"),
    ("lease_ms", int, "with --database-url: how long a replica's account runs and running requests count for "
                      "the others after its last heartbeat (a killed replica's free themselves this long after)"),
    ("query_budget_ms", int, "longest a list query may run (QUERY_TOO_SLOW)"),
    ("remove_codex_copies", bool, "after each run, remove codex's own copy of the image and the thread's rollout"),
    ("keys_file", Path, "named API keys with limits (JSON), re-read on SIGHUP"),
    ("metrics_auth", str, "when /metrics needs an API key: remote (only from other hosts; open on loopback), "
                          "always (every caller), never"),
    ("allow_unauthenticated_remote", bool, "allow binding a non-loopback address without an API key"),
    ("max_references", int, "reference images per request, 1-16 (past 5 they share a contact sheet)"),
    ("max_reference_bytes", int, "bytes per reference image"),
    ("max_reference_pixels", int, "pixels per reference image (decompression-bomb guard)"),
    ("max_prompt_chars", int, "longest prompt, in characters (INVALID_ARGUMENT beyond)"),
    ("http_max_body_bytes", int, "largest HTTP request body the shim accepts (413 beyond)"),
    ("mcp_reference_dir", list, "directory /mcp may read references from; repeatable"),
    ("mcp_inline_max_bytes", int, "larger MCP images are returned as links only"),
    ("readiness_ttl_ms", int, "how long a codex readiness probe is trusted"),
    ("finish_early", bool, "stop codex as soon as its image is final, skipping the model's closing turn"),
    ("download_idle_timeout_ms", int, "drop a download (HTTP or GetImageFile) whose reader takes nothing this long"),
    ("http_header_timeout_ms", int, "time to receive a request's headers (408 after)"),
    ("http_body_timeout_ms", int, "longest pause inside a request body (408 after)"),
    ("http_keepalive_timeout_ms", int, "idle time before a kept-alive connection closes"),
    ("http_max_connections_per_address", int, "connections per remote address (0: no cap)"),
    ("http_max_loopback_connections", int, "connections from loopback (0: no cap)"),
    ("blocking_threads", int, "threads for blocking work (Pillow, disk) off the event loop"),
    ("ready_file", str, "write {grpc_port, http_port, pid} here as JSON once serving"),
    ("log_level", str, "debug, info, warning or error"),
    ("codex_env_allow", list, "more variables codex may see (NAME or PREFIX*); comma list"),
    ("allowed_hosts", list, "Host names answered besides IPs and localhost; comma list"),
    ("allowed_origins", list, "browser origins allowed, with CORS (`*`: every site); comma list"),
    ("webhook_secret", str, "whsec_… secret that signs webhooks; without it no webhook_url is taken"),
    ("webhook_allow", list, "hosts webhooks may go to besides loopback (checked after DNS); comma list"),
    ("webhook_retry_ms", int, "how long a failing webhook is retried, with backoff"),
    ("banner", bool, "print where it serves and whether codex is ready, for a person, on stderr at start"),
]

# --help groups options by these headings; a field in none goes under "more".
GROUPS: list[tuple[str, tuple[str, ...]]] = [
    ("where it listens", ("grpc_host", "grpc_port", "http_host", "http_port", "http_enabled")),
    ("codex", ("codex_bin", "codex_profile", "codex_config", "accounts", "generation_timeout_ms", "kill_grace_ms",
               "finish_early", "remove_codex_copies", "readiness_ttl_ms")),
    ("keys and access", ("api_keys", "keys_file", "metrics_auth", "allow_unauthenticated_remote")),
    ("browsers and codex's environment", ("allowed_hosts", "allowed_origins", "codex_env_allow")),
    ("capacity and limits", ("max_concurrent", "queue_limit", "max_references", "max_reference_bytes",
                             "max_reference_pixels", "max_prompt_chars", "http_max_body_bytes",
                             "download_idle_timeout_ms", "http_header_timeout_ms", "http_body_timeout_ms",
                             "http_keepalive_timeout_ms", "http_max_connections_per_address",
                             "http_max_loopback_connections", "query_budget_ms", "blocking_threads")),
    ("MCP", ("mcp_reference_dir", "mcp_inline_max_bytes")),
    ("webhooks", ("webhook_secret", "webhook_allow", "webhook_retry_ms")),
    ("storage", ("output_dir", "state_dir", "retention_max_age_s", "retention_max_bytes", "retention_interval_ms")),
    ("several replicas", ("database_url", "object_store", "s3_endpoint", "s3_region", "lease_ms")),
    ("output", ("log_level", "banner", "ready_file")),
]

# Defaults that live outside the dataclass (computed at start, or read by
# another part), in words for --help and the settings reference.
_DEFAULT_WORDS = {
    "banner": "on when stderr is a terminal",
    "codex_bin": "the project's pinned install, else `codex` on PATH",
    "keys_file": "<state_dir>/keys.json",
    "accounts": "one account on the inherited CODEX_HOME",
    "database_url": "SQLite in the state directory",
    "object_store": "files in output_dir",
    "s3_endpoint": "AWS",
    "s3_region": "AWS_DEFAULT_REGION, else us-east-1",
}

# The HTTP shim keeps the seed server's names, which plugins' docs already use.
_ENV_NAMES = {"api_keys": PREFIX + "API_KEY", "http_host": PREFIX + "HOST", "http_port": PREFIX + "PORT"}


_FLAGS = {"api_keys": "--api-key", "accounts": "--account", "allowed_hosts": "--allowed-host",
          "allowed_origins": "--allowed-origin", "webhook_allow": "--webhook-allow"}
# Lists whose variable is comma separated; their flags may repeat and take commas too.
_COMMA_LISTS = ("api_keys", "codex_env_allow", "allowed_hosts", "allowed_origins", "webhook_allow")


def env_name(field: str) -> str:
    return _ENV_NAMES.get(field, PREFIX + field.upper())


def flag_name(field: str) -> str:
    return _FLAGS.get(field, "--" + field.replace("_", "-"))


def shown_default(field: str) -> str:
    """The default as a person reads it: `17342`, `on`, `~/.local/...`, or words."""
    if field in _DEFAULT_WORDS:
        return _DEFAULT_WORDS[field]
    value = getattr(Settings(), field)
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, Path):
        home = Path.home()
        return f"~/{value.relative_to(home)}" if value.is_relative_to(home) else str(value)
    if value in ("", ()):
        return "none"
    return str(value)


def _parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _from_env(field: str, kind: type, raw: str):
    if kind is bool:
        return _parse_bool(raw)
    if kind is int:
        return int(raw)
    if kind is Path:
        return Path(raw).expanduser()
    if kind is list:
        sep = "," if field in _COMMA_LISTS else "\n"
        return tuple(part.strip() for part in raw.split(sep) if part.strip())
    return raw


class _HelpFormatter(argparse.HelpFormatter):
    """`--[no-]flag` on one line for on/off options."""

    def __init__(self, prog):
        super().__init__(prog, max_help_position=30)

    def _format_action_invocation(self, action):
        if isinstance(action, argparse.BooleanOptionalAction):
            return "--[no-]" + action.option_strings[0][2:]
        return super()._format_action_invocation(action)


def _variable_exceptions() -> str:
    """Flags whose variable is not CODEX_IMAGE_SERVER_ + the flag's own name."""
    odd = [(flag_name(f), env_name(f)) for f, _, _ in FIELDS
           if env_name(f) != PREFIX + flag_name(f)[2:].replace("-", "_").upper()]
    return ", ".join(f"{flag} is {env}" for flag, env in odd)


USAGE = """codex-image-server [options]             serve gRPC and HTTP (the options below)
       codex-image-server service install|uninstall|status [--manager systemd|launchd]
       codex-image-server keys add NAME [--role member|admin]
                          [--max-concurrent N] [--images-per-day N]
       codex-image-server doctor [options]      check codex, its login, the ports and the disk"""

_METAVARS = {int: "N", Path: "PATH", list: "VALUE", str: "TEXT"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codex-image-server", usage=USAGE,
        description="Serve local Codex image generation over gRPC and the /v1 HTTP contract.\n\n"
                    f"Every option is also a variable: --max-concurrent is {PREFIX}MAX_CONCURRENT "
                    f"(except: {_variable_exceptions()}). A flag wins over its variable.",
        epilog="`codex-image-server service --help`, `keys --help` and `doctor --help` "
               "explain the subcommands.",
        formatter_class=_HelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    grouped = {field: title for title, fields in GROUPS for field in fields}
    groups = {title: parser.add_argument_group(title) for title, _ in GROUPS}
    for field, kind, help_text in FIELDS:
        title = grouped.get(field, "more")
        if title not in groups:
            groups[title] = parser.add_argument_group(title)
        target = groups[title]
        # %% because argparse formats help with %.
        full_help = f"{help_text} (default: {shown_default(field)})".replace("%", "%%")
        if kind is bool:
            target.add_argument(flag_name(field), dest=field, action=argparse.BooleanOptionalAction,
                                default=None, help=full_help)
        elif kind is list:
            target.add_argument(flag_name(field), dest=field, action="append", default=None, metavar="VALUE",
                                help=full_help)
        else:
            metavar = "MS" if field.endswith("_ms") else "HOST" if field.endswith("_host") else \
                "PORT" if field.endswith("_port") else _METAVARS.get(kind, "VALUE")
            target.add_argument(flag_name(field), dest=field, type=kind, default=None, metavar=metavar,
                                help=full_help)
    return parser


def load(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    args = build_parser().parse_args(argv)
    values: dict[str, Any] = {}
    for field, kind, _ in FIELDS:
        flag_value = getattr(args, field)
        if flag_value is not None:
            values[field] = tuple(flag_value) if kind is list else flag_value
            if field in _COMMA_LISTS and field != "api_keys":
                values[field] = tuple(p.strip() for v in flag_value for p in v.split(",") if p.strip())
        elif environ.get(env_name(field)) not in (None, ""):
            try:
                values[field] = _from_env(field, kind, environ[env_name(field)])
            except ValueError as exc:
                raise SystemExit(f"{env_name(field)}: {exc}") from None
    settings = Settings(**values)
    check(settings)
    return settings


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _has_named_keys(path: Path) -> bool:
    from codex_image_server.team.keys import KeyFileError, read_file  # noqa: PLC0415 - keys imports the store, settings stays light
    try:
        return bool(read_file(path))
    except KeyFileError as exc:
        raise SystemExit(str(exc)) from None


def check(settings: Settings) -> None:
    """Refuse settings that would be unsafe or cannot work, with a how-to-fix line."""
    if settings.max_concurrent < 1:
        raise SystemExit("max_concurrent must be at least 1")
    if settings.query_budget_ms < 1:
        raise SystemExit("query_budget_ms must be at least 1")
    if settings.max_prompt_chars < 1:
        raise SystemExit("max_prompt_chars must be at least 1")
    if settings.blocking_threads < 1:
        raise SystemExit("blocking_threads must be at least 1")
    if settings.lease_ms < 300:
        raise SystemExit("lease_ms must be at least 300")
    if settings.download_idle_timeout_ms < 1:
        raise SystemExit("download_idle_timeout_ms must be at least 1")
    for name in ("http_header_timeout_ms", "http_body_timeout_ms", "http_keepalive_timeout_ms"):
        if getattr(settings, name) < 1:
            raise SystemExit(f"{name} must be at least 1")
    if settings.http_max_connections_per_address < 0 or settings.http_max_loopback_connections < 0:
        raise SystemExit("HTTP connection caps must not be negative (0: no cap)")
    if settings.queue_limit < 0:
        raise SystemExit("queue_limit must not be negative")
    if not 1 <= settings.max_references <= MAX_REFERENCES:
        # The plugin's limit; codex's tool takes 5 paths, the rest share a contact sheet.
        raise SystemExit(f"max_references must be between 1 and {MAX_REFERENCES}")
    exposed = [h for h in (settings.grpc_host, settings.http_host if settings.http_enabled else "127.0.0.1")
               if not is_loopback(h)]
    if settings.retention_max_age_s < 0 or settings.retention_max_bytes < 0 or settings.retention_interval_ms < 100:
        raise SystemExit("retention limits must not be negative, and the interval at least 100 ms")
    from codex_image_server.engine.accounts import parse as parse_accounts  # noqa: PLC0415 - settings stays light
    try:
        parse_accounts(settings.accounts, settings.max_concurrent)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    from codex_image_server.engine.codex_env import check_allow  # noqa: PLC0415 - settings stays light
    try:
        check_allow(settings.codex_env_allow)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    for host in settings.allowed_hosts:
        if not host or any(c in host for c in "/:@ *"):
            raise SystemExit(f"allowed_hosts: {host!r} is not a host name (give the name alone, no scheme or "
                             "port)")
    for origin in settings.allowed_origins:
        scheme, sep, rest = origin.partition("://")
        if origin not in ("*", "null") and (not sep or not scheme or not rest or any(c in rest for c in "/?#@ *")):
            raise SystemExit(f"allowed_origins: {origin!r} is not an origin: give scheme://host[:port] "
                             "with no path, e.g. https://photos.example.com")
    if settings.webhook_secret:
        from codex_image_server.operations.webhooks import secret_bytes  # noqa: PLC0415 - settings stays light
        try:
            secret_bytes(settings.webhook_secret)
        except ValueError as exc:
            raise SystemExit(f"webhook_secret: {exc}") from None
    if settings.webhook_retry_ms < 0:
        raise SystemExit("webhook_retry_ms must not be negative")
    if settings.metrics_auth not in ("remote", "never", "always"):
        raise SystemExit("metrics_auth must be remote, never or always")
    if exposed and not settings.auth_required and not settings.allow_unauthenticated_remote:
        raise SystemExit(
            f"refusing to bind {', '.join(exposed)} without an API key: anyone who can reach it "
            f"could spend your Codex quota. Set {env_name('api_keys')}, bind 127.0.0.1, or pass "
            "--allow-unauthenticated-remote if you really mean it.")
