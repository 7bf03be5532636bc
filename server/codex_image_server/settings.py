"""Every setting of the server, read once from flags and CODEX_IMAGE_SERVER_* variables.

Flags win over variables, variables over defaults. README's settings table
mirrors `FIELDS` below.
"""
from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
from pathlib import Path

from .version import __version__

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
    blocking_threads: int = 4
    ready_file: str = ""
    log_level: str = "info"
    codex_env_allow: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    webhook_secret: str = ""
    webhook_allow: tuple[str, ...] = ()
    webhook_retry_ms: int = 300_000

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
    ("codex_bin", str, "codex binary (default: the project's pinned npm install, else `codex` on PATH)"),
    ("codex_profile", str, "codex config profile passed as --profile"),
    ("codex_config", list, "extra codex -c key=value overrides (variable: one per line)"),
    ("accounts", list, "Codex accounts as NAME=PATH or NAME:N=PATH (a CODEX_HOME each, N runs at once; "
                       "default: the inherited CODEX_HOME); variable: one per line"),
    ("output_dir", Path, "where finished images and their metadata are kept"),
    ("state_dir", Path, "working directories and the record of running codex process groups"),
    ("max_concurrent", int, "codex processes allowed to run at once"),
    ("queue_limit", int, "requests allowed to wait for a slot; beyond it RESOURCE_EXHAUSTED"),
    ("kill_grace_ms", int, "SIGTERM to SIGKILL grace when cancelling codex"),
    ("generation_timeout_ms", int, "longest a generation may run"),
    ("api_keys", list, "API keys (flag repeatable; variable comma separated); when set, ImageService calls need one"),
    ("retention_max_age_s", int, "delete stored images older than this many seconds (0: keep)"),
    ("retention_max_bytes", int, "delete the oldest stored images while the store holds more bytes (0: no cap)"),
    ("retention_interval_ms", int, "how often the retention sweeper runs"),
    ("database_url", str, "postgresql://… index shared by several replicas (default: SQLite in the state directory)"),
    ("object_store", str, "s3://bucket/prefix for images shared by several replicas (default: files in output_dir)"),
    ("s3_endpoint", str, "S3 API URL for --object-store (default: AWS); keys from AWS_ACCESS_KEY_ID and "
                         "AWS_SECRET_ACCESS_KEY"),
    ("s3_region", str, "S3 region for --object-store (default: AWS_DEFAULT_REGION, else us-east-1)"),
    ("lease_ms", int, "with --database-url: how long a replica's account runs and running requests count for "
                      "the others after its last heartbeat (a killed replica's free themselves this long after)"),
    ("query_budget_ms", int, "longest a history or image list query may run before it is stopped "
                             "(DEADLINE_EXCEEDED QUERY_TOO_SLOW)"),
    ("remove_codex_copies", bool, "after each run, remove codex's own copy of the image and the thread's rollout"),
    ("keys_file", Path, "named API keys with limits (JSON; default <state_dir>/keys.json); re-read on SIGHUP"),
    ("metrics_auth", str, "who may read /metrics without a key: remote (loopback only), never, always"),
    ("allow_unauthenticated_remote", bool, "allow binding a non-loopback address without an API key"),
    ("max_references", int, "reference images per request, 1-16 (past 5 they share a contact sheet)"),
    ("max_reference_bytes", int, "bytes per reference image"),
    ("max_reference_pixels", int, "pixels per reference image (decompression-bomb guard)"),
    ("max_prompt_chars", int, "longest prompt, in characters (INVALID_ARGUMENT beyond)"),
    ("http_max_body_bytes", int, "largest HTTP request body the shim accepts (413 beyond)"),
    ("mcp_reference_dir", list, "a directory whose files /mcp callers may name as references (repeatable; "
                                "variable: one per line); none: /mcp reads no files"),
    ("mcp_inline_max_bytes", int, "MCP tools return larger images as links only (default: 5 MB as base64)"),
    ("readiness_ttl_ms", int, "how long a codex readiness probe is trusted"),
    ("finish_early", bool, "stop codex as soon as its image is final, skipping the model's closing turn"),
    ("download_idle_timeout_ms", int, "drop a download (HTTP or GetImageFile) whose reader takes nothing this long"),
    ("blocking_threads", int, "threads for blocking work (Pillow, disk) off the event loop"),
    ("ready_file", str, "write {grpc_port, http_port, pid} here as JSON once serving"),
    ("log_level", str, "debug, info, warning or error"),
    ("codex_env_allow", list, "more environment variables codex may see, NAME or PREFIX* (it gets PATH, HOME, "
                              "locale, proxy and CA variables and its config's provider key only); comma list"),
    ("allowed_hosts", list, "Host names the HTTP port answers besides IP literals, localhost and *.localhost "
                            "(e.g. a balancer's public name); comma list"),
    ("allowed_origins", list, "browser origins (scheme://host[:port]) allowed to call the HTTP port, with CORS; "
                              "`*` allows every site (not advised); comma list"),
    ("webhook_secret", str, "whsec_… secret that signs webhooks (Standard Webhooks); without it no webhook is sent"),
    ("webhook_allow", list, "hosts webhooks may go to besides loopback addresses (checked after DNS); comma list"),
    ("webhook_retry_ms", int, "how long a failing webhook is retried (with backoff) before it is given up"),
]

# The HTTP shim keeps the seed server's names, which plugins' docs already use.
_ENV_NAMES = {"api_keys": PREFIX + "API_KEY", "http_host": PREFIX + "HOST", "http_port": PREFIX + "PORT"}


_FLAGS = {"api_keys": "--api-key", "accounts": "--account", "allowed_hosts": "--allowed-host",
          "allowed_origins": "--allowed-origin", "webhook_allow": "--webhook-allow"}
# Lists whose variable is comma separated; their flags may repeat and take commas too.
_COMMA_LISTS = ("api_keys", "codex_env_allow", "allowed_hosts", "allowed_origins", "webhook_allow")


def env_name(field: str) -> str:
    return _ENV_NAMES.get(field, PREFIX + field.upper())


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codex-image-server",
        description="Serve local Codex image generation over gRPC and the /v1 HTTP contract.",
        epilog="`codex-image-server service install|uninstall|status` keeps it running at login "
               "(systemd user unit on Linux, launchd agent on macOS).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    for field, kind, help_text in FIELDS:
        flag = _FLAGS.get(field, "--" + field.replace("_", "-"))
        full_help = f"{help_text} [{env_name(field)}]"
        if kind is bool:
            parser.add_argument(flag, dest=field, action=argparse.BooleanOptionalAction,
                                default=None, help=full_help)
        elif kind is list:
            parser.add_argument(flag, dest=field, action="append", default=None, help=full_help)
        else:
            parser.add_argument(flag, dest=field, type=kind, default=None, help=full_help)
    return parser


def load(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    args = build_parser().parse_args(argv)
    values = {}
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
    from .keys import KeyFileError, read_file  # noqa: PLC0415 - keys imports the store, settings stays light
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
    if settings.queue_limit < 0:
        raise SystemExit("queue_limit must not be negative")
    if not 1 <= settings.max_references <= MAX_REFERENCES:
        # The plugin's limit; codex's tool takes 5 paths, the rest share a contact sheet.
        raise SystemExit(f"max_references must be between 1 and {MAX_REFERENCES}")
    exposed = [h for h in (settings.grpc_host, settings.http_host if settings.http_enabled else "127.0.0.1")
               if not is_loopback(h)]
    if settings.retention_max_age_s < 0 or settings.retention_max_bytes < 0 or settings.retention_interval_ms < 100:
        raise SystemExit("retention limits must not be negative, and the interval at least 100 ms")
    from .engine.accounts import parse as parse_accounts  # noqa: PLC0415
    try:
        parse_accounts(settings.accounts, settings.max_concurrent)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    from .engine.codex_env import check_allow  # noqa: PLC0415
    try:
        check_allow(settings.codex_env_allow)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    for host in settings.allowed_hosts:
        if not host or any(c in host for c in "/:@ *"):
            raise SystemExit(f"allowed_hosts: {host!r} is not a host name (give the name alone, no scheme or port)")
    for origin in settings.allowed_origins:
        scheme, sep, rest = origin.partition("://")
        if origin not in ("*", "null") and (not sep or not scheme or not rest or any(c in rest for c in "/?#@ *")):
            raise SystemExit(f"allowed_origins: {origin!r} is not an origin: give scheme://host[:port] "
                             "with no path, e.g. https://photos.example.com")
    if settings.webhook_secret:
        from .webhooks import secret_bytes  # noqa: PLC0415
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
