"""Every setting of the server, read once from flags and CODEX_IMAGE_SERVER_* variables.

Each setting is declared once, as a field of `Settings`: its type, default,
and (in the field's metadata, see `setting`) its help, --help group and any
flag or variable name that differs from the field's. The argparse flags, the
variables read, --help, `OPTIONS` (docs/operating.md's settings table mirrors
it; tests/test_docs.py names any row missing) all derive from those fields.
Flags win over variables, variables over defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
import types
import typing
from pathlib import Path
from typing import Any

from codex_image_server.version import __version__

PREFIX = "CODEX_IMAGE_SERVER_"
MAX_REFERENCES = 16  # the Photoshop plugin's own limit

# --help's groups, in the order the fields below first name them.
LISTEN = "where it listens"
CODEX = "codex"
ACCESS = "keys and access"
BROWSERS = "browsers and codex's environment"
LIMITS = "capacity and limits"
MCP = "MCP"
WEBHOOKS = "webhooks"
STORAGE = "storage"
REPLICAS = "several replicas"
OUTPUT = "output"


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(base) / "codex-image-server"


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return Path(base) / "codex-image-server"


def setting(
    default: Any = dataclasses.MISSING,
    *,
    help: str,  # noqa: A002 - argparse's word
    group: str,
    factory: Any = dataclasses.MISSING,
    flag: str = "",
    env: str = "",
    shown: str = "",
    commas: bool = False,
    flag_commas: bool | None = None,
) -> Any:
    """A field of `Settings` with what the command line and the docs say of it.

    flag, env: when not --field-name and CODEX_IMAGE_SERVER_FIELD_NAME.
    shown: the default in words, when it is computed at start or read by another part.
    commas (lists): the variable is comma separated, not one value a line;
    its flags may repeat and take commas too, unless flag_commas=False.
    """
    metadata = {
        "help": help,
        "group": group,
        "flag": flag,
        "env": env,
        "shown": shown,
        "commas": commas,
        "flag_commas": commas if flag_commas is None else flag_commas,
    }
    return dataclasses.field(default=default, default_factory=factory, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class Settings:
    grpc_host: str = setting("127.0.0.1", help="address the gRPC server binds", group=LISTEN)
    grpc_port: int = setting(17342, help="gRPC port (0 picks a free one)", group=LISTEN)
    # The HTTP shim keeps the seed server's variable names, which plugins' docs already use.
    http_host: str = setting(
        "127.0.0.1", help="address the HTTP shim binds", group=LISTEN, env=PREFIX + "HOST"
    )
    http_port: int = setting(
        17341, help="HTTP shim port (0 picks a free one)", group=LISTEN, env=PREFIX + "PORT"
    )
    http_enabled: bool = setting(
        True, help="start the /v1 HTTP shim beside the gRPC server", group=LISTEN
    )

    codex_bin: str = setting(
        "",
        help="the codex binary to run",
        group=CODEX,
        shown="the project's pinned install, else `codex` on PATH",
    )
    codex_profile: str = setting("", help="codex config profile passed as --profile", group=CODEX)
    codex_config: tuple[str, ...] = setting(
        (),
        help="extra codex -c key=value overrides; repeatable; variable: one per line",
        group=CODEX,
    )
    accounts: tuple[str, ...] = setting(
        (),
        help="Codex accounts as NAME=PATH or NAME:N=PATH (a CODEX_HOME each, N runs at once); "
        "repeatable; variable: one per line",
        group=CODEX,
        flag="--account",
        shown="one account on the inherited CODEX_HOME",
    )
    kill_grace_ms: int = setting(
        3000, help="SIGTERM to SIGKILL grace when cancelling codex", group=CODEX
    )
    generation_timeout_ms: int = setting(600_000, help="longest a generation may run", group=CODEX)
    remove_codex_copies: bool = setting(
        True,
        help="after each run, remove codex's own copy of the image and the thread's rollout",
        group=CODEX,
    )
    readiness_ttl_ms: int = setting(
        10_000, help="how long a codex readiness probe is trusted", group=CODEX
    )
    finish_early: bool = setting(
        True,
        help="stop codex as soon as its image is final, skipping the model's closing turn",
        group=CODEX,
    )

    # A flag gives one key whole; only the variable separates keys at commas.
    api_keys: tuple[str, ...] = setting(
        (),
        help="API keys; when set, every call but health needs one; repeatable; "
        "variable: comma separated",
        group=ACCESS,
        flag="--api-key",
        env=PREFIX + "API_KEY",
        commas=True,
        flag_commas=False,
    )
    keys_file: Path | None = setting(
        None,
        help="named API keys with limits (JSON), re-read on SIGHUP",
        group=ACCESS,
        shown="<state_dir>/keys.json",
    )
    metrics_auth: str = setting(
        "remote",
        help="when /metrics needs an API key: remote (only from other hosts; open on loopback), "
        "always (every caller), never",
        group=ACCESS,
    )
    allow_unauthenticated_remote: bool = setting(
        False, help="allow binding a non-loopback address without an API key", group=ACCESS
    )

    codex_env_allow: tuple[str, ...] = setting(
        (),
        help="more variables codex may see (NAME or PREFIX*); comma list",
        group=BROWSERS,
        commas=True,
    )
    allowed_hosts: tuple[str, ...] = setting(
        (),
        help="Host names answered besides IPs and localhost; comma list",
        group=BROWSERS,
        flag="--allowed-host",
        commas=True,
    )
    allowed_origins: tuple[str, ...] = setting(
        (),
        help="browser origins allowed, with CORS (`*`: every site); comma list",
        group=BROWSERS,
        flag="--allowed-origin",
        commas=True,
    )

    max_concurrent: int = setting(4, help="codex processes allowed to run at once", group=LIMITS)
    queue_limit: int = setting(
        16, help="requests allowed to wait for a slot; beyond it RESOURCE_EXHAUSTED", group=LIMITS
    )
    query_budget_ms: int = setting(
        1_000, help="longest a list query may run (QUERY_TOO_SLOW)", group=LIMITS
    )
    max_references: int = setting(
        16,
        help="reference images per request, 1-16 (past 5 they share a contact sheet)",
        group=LIMITS,
    )
    max_reference_bytes: int = setting(
        20 * 1024 * 1024, help="bytes per reference image", group=LIMITS
    )
    max_reference_pixels: int = setting(
        64_000_000, help="pixels per reference image (decompression-bomb guard)", group=LIMITS
    )
    max_prompt_chars: int = setting(
        32_000, help="longest prompt, in characters (INVALID_ARGUMENT beyond)", group=LIMITS
    )
    # 80 MB of images, base64 in JSON, plus room for the rest: e.g. 16
    # references of 5 MB or 4 of 20 MB. It, not the count, bounds the memory
    # one HTTP request can take (the shim holds the body, its decoded images
    # and the gRPC message at once).
    http_max_body_bytes: int = setting(
        4 * 20 * 1024 * 1024 * 4 // 3 + 1024 * 1024,
        help="largest HTTP request body the shim accepts (413 beyond)",
        group=LIMITS,
    )
    download_idle_timeout_ms: int = setting(
        30_000,
        help="drop a download (HTTP or GetImageFile) whose reader takes nothing this long",
        group=LIMITS,
    )
    # The HTTP port's own limits (docs/security-limits.md): time to send a
    # request's headers, longest pause in a body, idle time between requests
    # on a kept-alive connection, connections one address may hold.
    http_header_timeout_ms: int = setting(
        10_000, help="time to receive a request's headers (408 after)", group=LIMITS
    )
    http_body_timeout_ms: int = setting(
        30_000, help="longest pause inside a request body (408 after)", group=LIMITS
    )
    http_keepalive_timeout_ms: int = setting(
        75_000, help="idle time before a kept-alive connection closes", group=LIMITS
    )
    http_max_connections_per_address: int = setting(
        64, help="connections per remote address (0: no cap)", group=LIMITS
    )
    http_max_loopback_connections: int = setting(
        1024, help="connections from loopback (0: no cap)", group=LIMITS
    )
    blocking_threads: int = setting(
        4, help="threads for blocking work (Pillow, disk) off the event loop", group=LIMITS
    )

    mcp_reference_dir: tuple[str, ...] = setting(
        (), help="directory /mcp may read references from; repeatable", group=MCP
    )
    mcp_inline_max_bytes: int = setting(
        3_750_000, help="larger MCP images are returned as links only", group=MCP
    )

    webhook_secret: str = setting(
        "",
        help="whsec_… secret that signs webhooks; without it no webhook_url is taken",
        group=WEBHOOKS,
    )
    webhook_allow: tuple[str, ...] = setting(
        (),
        help="hosts webhooks may go to besides loopback (checked after DNS); comma list",
        group=WEBHOOKS,
        flag="--webhook-allow",
        commas=True,
    )
    webhook_retry_ms: int = setting(
        300_000, help="how long a failing webhook is retried, with backoff", group=WEBHOOKS
    )

    output_dir: Path = setting(
        factory=lambda: _default_data_dir() / "images",
        help="where finished images and their metadata are kept",
        group=STORAGE,
    )
    state_dir: Path = setting(
        factory=_default_state_dir,
        help="working directories and the record of running codex process groups",
        group=STORAGE,
    )
    retention_max_age_s: int = setting(
        0, help="delete stored images older than this many seconds (0: keep)", group=STORAGE
    )
    retention_max_bytes: int = setting(
        0,
        help="delete the oldest stored images while the store holds more bytes (0: no cap)",
        group=STORAGE,
    )
    retention_interval_ms: int = setting(
        300_000, help="how often the retention sweeper runs", group=STORAGE
    )
    retention_unrecorded_age_s: int = setting(
        3600,
        help="delete stored objects no record names once this many seconds old "
        "(an upload cut off before its record; 0: keep)",
        group=STORAGE,
    )

    database_url: str = setting(
        "",
        help="postgresql://… index shared by several replicas",
        group=REPLICAS,
        shown="SQLite in the state directory",
    )
    object_store: str = setting(
        "",
        help="s3://bucket/prefix for images shared by several replicas",
        group=REPLICAS,
        shown="files in output_dir",
    )
    s3_endpoint: str = setting(
        "",
        help="S3 API URL for --object-store; keys from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        group=REPLICAS,
        shown="AWS",
    )
    s3_region: str = setting(
        "",
        help="S3 region for --object-store",
        group=REPLICAS,
        shown="AWS_DEFAULT_REGION, else us-east-1",
    )
    lease_ms: int = setting(
        15_000,
        help="with --database-url: how long a replica's account runs and running requests "
        "count for the others after its last heartbeat (a killed replica's free themselves "
        "this long after)",
        group=REPLICAS,
    )

    ready_file: str = setting(
        "", help="write {grpc_port, http_port, pid} here as JSON once serving", group=OUTPUT
    )
    log_level: str = setting("info", help="debug, info, warning or error", group=OUTPUT)
    banner: bool | None = setting(  # None: when stderr is a terminal
        None,
        help="print where it serves and whether codex is ready, for a person, on stderr at start",
        group=OUTPUT,
        shown="on when stderr is a terminal",
    )

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
        return (
            self.max_references * self.max_reference_bytes
            + 4 * self.max_prompt_chars
            + 4 * 1024 * 1024
        )

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


@dataclasses.dataclass(frozen=True)
class Option:
    """One setting as the command line, the environment and the docs show it,
    derived from its field."""

    name: str
    kind: type  # str, int, bool, Path, or list for a tuple of strings
    help: str
    group: str
    flag: str
    env: str
    shown: str  # the default in words, or "" to show the default itself
    commas: bool
    flag_commas: bool


def _kind(annotation: Any) -> type:
    """str, int, bool or Path from a field's type (X | None as X); list for tuple[str, ...]."""
    if typing.get_origin(annotation) is tuple:
        return list
    if isinstance(annotation, types.UnionType):
        (annotation,) = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    return annotation


def options_of(cls: type) -> tuple[Option, ...]:
    """Each field of a dataclass declared with `setting`, as an `Option`."""
    hints = typing.get_type_hints(cls)
    out = []
    for field in dataclasses.fields(cls):
        meta = field.metadata
        if "help" not in meta:
            raise TypeError(
                f"{cls.__name__}.{field.name} is declared without setting(): "
                "it needs a help and a group"
            )
        out.append(
            Option(
                name=field.name,
                kind=_kind(hints[field.name]),
                help=meta["help"],
                group=meta["group"],
                flag=meta["flag"] or "--" + field.name.replace("_", "-"),
                env=meta["env"] or PREFIX + field.name.upper(),
                shown=meta["shown"],
                commas=meta["commas"],
                flag_commas=meta["flag_commas"],
            )
        )
    return tuple(out)


OPTIONS: tuple[Option, ...] = options_of(Settings)
_BY_NAME = {option.name: option for option in OPTIONS}


def env_name(field: str) -> str:
    return _BY_NAME[field].env


def flag_name(field: str) -> str:
    return _BY_NAME[field].flag


def shown_default(field: str) -> str:
    """The default as a person reads it: `17342`, `on`, `~/.local/...`, or words."""
    if _BY_NAME[field].shown:
        return _BY_NAME[field].shown
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


def _from_env(option: Option, raw: str) -> Any:
    if option.kind is bool:
        return _parse_bool(raw)
    if option.kind is int:
        return int(raw)
    if option.kind is Path:
        return Path(raw).expanduser()
    if option.kind is list:
        sep = "," if option.commas else "\n"
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
    odd = [o for o in OPTIONS if o.env != PREFIX + o.flag[2:].replace("-", "_").upper()]
    return ", ".join(f"{o.flag} is {o.env}" for o in odd)


USAGE = """codex-image-server [options]             serve gRPC and HTTP (the options below)
       codex-image-server service install|uninstall|status [--manager systemd|launchd]
       codex-image-server keys add NAME [--role member|admin]
                          [--max-concurrent N] [--images-per-day N]
       codex-image-server doctor [options]      check codex, its login, the ports and the disk"""

_METAVARS = {int: "N", Path: "PATH", list: "VALUE", str: "TEXT"}


def _metavar(option: Option) -> str:
    for suffix, word in (("_ms", "MS"), ("_host", "HOST"), ("_port", "PORT")):
        if option.name.endswith(suffix):
            return word
    return _METAVARS.get(option.kind, "VALUE")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codex-image-server",
        usage=USAGE,
        description="Serve local Codex image generation over gRPC and the /v1 HTTP contract.\n\n"
        f"Every option is also a variable: --max-concurrent is {PREFIX}MAX_CONCURRENT "
        f"(except: {_variable_exceptions()}). A flag wins over its variable.",
        epilog="`codex-image-server service --help`, `keys --help` and `doctor --help` "
        "explain the subcommands.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    groups: dict[str, Any] = {}
    for option in OPTIONS:
        if option.group not in groups:
            groups[option.group] = parser.add_argument_group(option.group)
        target = groups[option.group]
        # %% because argparse formats help with %.
        full_help = f"{option.help} (default: {shown_default(option.name)})".replace("%", "%%")
        if option.kind is bool:
            target.add_argument(
                option.flag,
                dest=option.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=full_help,
            )
        elif option.kind is list:
            target.add_argument(
                option.flag,
                dest=option.name,
                action="append",
                default=None,
                metavar="VALUE",
                help=full_help,
            )
        else:
            target.add_argument(
                option.flag,
                dest=option.name,
                type=option.kind,
                default=None,
                metavar=_metavar(option),
                help=full_help,
            )
    return parser


def load(
    argv: list[str] | None = None, environ: typing.Mapping[str, str] | None = None
) -> Settings:
    environ = os.environ if environ is None else environ
    args = build_parser().parse_args(argv)
    values: dict[str, Any] = {}
    for option in OPTIONS:
        flag_value = getattr(args, option.name)
        if flag_value is not None:
            if option.flag_commas:
                values[option.name] = tuple(
                    p.strip() for v in flag_value for p in v.split(",") if p.strip()
                )
            else:
                values[option.name] = tuple(flag_value) if option.kind is list else flag_value
        elif environ.get(option.env) not in (None, ""):
            try:
                values[option.name] = _from_env(option, environ[option.env])
            except ValueError as exc:
                raise SystemExit(f"{option.env}: {exc}") from None
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
    exposed = [
        h
        for h in (settings.grpc_host, settings.http_host if settings.http_enabled else "127.0.0.1")
        if not is_loopback(h)
    ]
    if (
        min(
            settings.retention_max_age_s,
            settings.retention_max_bytes,
            settings.retention_unrecorded_age_s,
        )
        < 0
        or settings.retention_interval_ms < 100
    ):
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
            raise SystemExit(
                f"allowed_hosts: {host!r} is not a host name (give the name alone, no scheme or "
                "port)"
            )
    for origin in settings.allowed_origins:
        scheme, sep, rest = origin.partition("://")
        if origin not in ("*", "null") and (
            not sep or not scheme or not rest or any(c in rest for c in "/?#@ *")
        ):
            raise SystemExit(
                f"allowed_origins: {origin!r} is not an origin: give scheme://host[:port] "
                "with no path, e.g. https://photos.example.com"
            )
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
            "--allow-unauthenticated-remote if you really mean it."
        )
