"""`codex-image-server doctor [options]`: what the server needs, checked
before it runs, each problem with the command that fixes it.

It takes the server's own options and variables (the same ports, codex,
accounts and directories) and changes nothing: codex found and its version,
each account's login, both ports free (or one of our servers already answering
there), the output and state directories writable with room to spare.
Exit 0 when nothing must be fixed, 1 otherwise."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil
import socket
import sys
import urllib.request
from pathlib import Path

from codex_image_server import settings as settings_mod
from codex_image_server.engine import codex_env, versions
from codex_image_server.engine.accounts import parse as parse_accounts
from codex_image_server.engine.image_locator import codex_home
from codex_image_server.engine.readiness import probe

LOW_DISK_BYTES = 1 << 30  # a few hundred images, with room for references


@dataclasses.dataclass
class Check:
    what: str
    ok: bool
    detail: str
    fix: str = ""  # what to do, e.g. "run: make codex"


def _codex(settings) -> list[Check]:
    specs = parse_accounts(settings.accounts, settings.max_concurrent) if settings.accounts else []
    homes = [(s.name, s.home) for s in specs] or [("default", codex_home(dict(os.environ)))]
    checks = []
    for i, (name, home) in enumerate(homes):
        # The environment the server would give codex: a login that works only
        # with a variable codex is not given would be a false "ready".
        env = codex_env.environment(
            home, allow=settings.codex_env_allow, overrides=settings.codex_config
        )
        ready = probe(settings.codex_bin, settings.codex_config, settings.codex_profile, env)
        if i == 0:
            if not ready.found:
                checks.append(
                    Check("codex", False, ready.problem.split(". ")[0], f"run: {ready.fix}")
                )
                return checks
            tested = versions.tested(ready.version)
            checks.append(
                Check(
                    "codex",
                    True,
                    f"{ready.version or 'unknown version'} at {ready.path}"
                    + ("" if tested else f" (outside the tested range {versions.tested_range()})"),
                )
            )
        label = "login" if len(homes) == 1 else f"login {name}"
        if ready.ready:
            how = "logged in" if ready.logged_in else "a custom model provider is configured"
            checks.append(Check(label, True, f"{how} (CODEX_HOME={home})"))
        else:
            checks.append(
                Check(
                    label,
                    False,
                    f"{ready.problem.split('. ')[0]} (CODEX_HOME={home})",
                    f"run: {ready.fix}" if ready.fix else "",
                )
            )
    return checks


def _ours_answers(host: str, port: int, http: bool) -> bool:
    """A codex-image-server already serves there (doctor run beside it)."""
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if http:
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=3) as resp:
                return "server_version" in json.load(resp)
        except urllib.error.HTTPError as exc:  # 503 while codex is not ready: still ours
            try:
                return "server_version" in json.load(exc)
            except ValueError:
                return False
        except (OSError, ValueError):
            return False
    import grpc  # noqa: PLC0415 - only here
    from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: PLC0415 - as grpc

    with grpc.insecure_channel(f"{host}:{port}") as channel:
        try:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
        except grpc.RpcError:
            return False
    return True


def _port(what: str, host: str, port: int, flag: str, variable: str, http: bool) -> Check:
    if port == 0:
        return Check(what, True, "0: a free port is picked at start")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE and _ours_answers(host, port, http):
                return Check(what, True, f"{host}:{port}: a codex-image-server is serving there")
            return Check(
                what,
                False,
                f"{host}:{port}: {exc.strerror or exc}",
                f"pick a free port: {flag} N (or {variable}=N)",
            )
    return Check(what, True, f"{host}:{port} is free")


def _directory(what: str, path: Path, flag: str) -> Check:
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        return Check(
            what, False, f"{path}: {existing} is not writable", f"make it writable, or {flag} PATH"
        )
    free = shutil.disk_usage(existing).free
    state = "exists" if existing == path else "will be created"
    detail = f"{path} ({state}; {free / (1 << 30):.1f} GiB free)"
    if free < LOW_DISK_BYTES:
        return Check(what, False, detail, f"free some space there, or {flag} PATH on a bigger disk")
    return Check(what, True, detail)


def run(settings) -> list[Check]:
    s = settings_mod
    checks = _codex(settings)
    checks.append(
        _port(
            "gRPC port",
            settings.grpc_host,
            settings.grpc_port,
            s.flag_name("grpc_port"),
            s.env_name("grpc_port"),
            http=False,
        )
    )
    if settings.http_enabled:
        checks.append(
            _port(
                "HTTP port",
                settings.http_host,
                settings.http_port,
                s.flag_name("http_port"),
                s.env_name("http_port"),
                http=True,
            )
        )
    checks.append(_directory("images", settings.output_dir, s.flag_name("output_dir")))
    checks.append(_directory("state", settings.state_dir, s.flag_name("state_dir")))
    return checks


def report(checks: list[Check]) -> str:
    lines = ["codex-image-server doctor"]
    for c in checks:
        lines.append(f"  {'ok ' if c.ok else 'FIX'}  {c.what:<10} {c.detail}")
        if c.fix:
            lines.append(f"{'':18}{c.fix}")
    problems = sum(not c.ok for c in checks)
    lines.append("nothing to fix" if not problems else f"{problems} to fix")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if argv[:1] in (["-h"], ["--help"]):
        print(
            __doc__.split("\n\n")[0].replace("`", "")
            + "\n\n"
            + __doc__.split("\n\n", 1)[1]
            + "\nOptions: those of `codex-image-server --help`."
        )
        return 0
    checks = run(settings_mod.load(argv))
    sys.stdout.write(report(checks))
    return 0 if all(c.ok for c in checks) else 1
