"""The few lines a person sees when the server starts on a terminal: where it
serves, the console's URL, and whether codex is ready (with the one command
that fixes it when not). The JSON log lines stay as they are; services and
pipes, where stderr is not a terminal, get no banner unless asked."""

from __future__ import annotations

import sys

from codex_image_server.engine.readiness import Readiness
from codex_image_server.version import __version__

_WILDCARDS = ("0.0.0.0", "::", "")


def wanted(setting: bool | None, stream=None) -> bool:
    """--banner / --no-banner, else only when stderr is a terminal."""
    if setting is not None:
        return setting
    stream = stream or sys.stderr
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _reachable(host: str) -> str:
    """An address to type: a wildcard bind is reached on loopback; IPv6 in brackets."""
    host = "127.0.0.1" if host in _WILDCARDS else host
    return f"[{host}]" if ":" in host else host


def render(
    grpc_host: str,
    grpc_port: int,
    http_host: str | None,
    http_port: int | None,
    ready: Readiness,
    auth_required: bool,
) -> str:
    grpc_addr = f"{_reachable(grpc_host)}:{grpc_port}"
    lines = [f"codex-image-server {__version__} is serving", f"  gRPC     {grpc_addr}"]
    if http_port:
        base = f"http://{_reachable(http_host or '127.0.0.1')}:{http_port}"
        lines += [
            f"  HTTP     {base}/v1   (also the OpenAI Images API's base URL)",
            f"  console  {base}/",
        ]
    else:
        lines.append("  HTTP     off (--no-http-enabled): no /v1, no console")
    if auth_required:
        lines.append("  keys     calls need an API key (Authorization: Bearer KEY or X-API-Key)")
    if ready.ready:
        lines.append(f"  codex    ready ({ready.version or 'codex'})")
    else:
        # The problem's first sentence; the fix is the command on the next line.
        lines.append(f"  codex    NOT READY: {ready.problem.split('. ')[0].rstrip('.')}")
        if ready.fix:
            lines.append(f"  fix      {ready.fix}   (no restart needed)")
    lines.append("Ctrl-C stops it. JSON log lines follow on stderr.")
    return "\n".join(lines) + "\n"
