"""The unit files themselves, as text: a systemd user unit and a launchd
agent. Pure functions of where things are, so `service install`, the copies
in deploy/ and the tests all come from here."""

from __future__ import annotations

import dataclasses
import plistlib
from pathlib import Path

NAME = "codex-image-server"
SYSTEMD_UNIT = f"{NAME}.service"
LAUNCHD_LABEL = "dev.codeximage.server"
# Seconds a stop may take: the server's kill grace for codex (3 s by default)
# plus its own shutdown, with room to spare.
STOP_TIMEOUT_S = 30
RESTART_DELAY_S = 5


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where the service's pieces live for one user."""

    command: tuple[
        str, ...
    ]  # how to run the server, e.g. ("/home/u/.local/bin/codex-image-server",)
    env_file: str
    log_file: str = ""  # launchd only: systemd sends logs to the journal


def layout_for(
    home: Path, command: tuple[str, ...], *, manager: str, config_home: Path | None = None
) -> Layout:
    config = config_home or home / ".config"
    log = str(home / "Library" / "Logs" / NAME / "server.log") if manager == "launchd" else ""
    return Layout(command=command, env_file=str(config / NAME / "env"), log_file=log)


def unit_path(home: Path, *, manager: str, config_home: Path | None = None) -> Path:
    if manager == "launchd":
        return home / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"
    return (config_home or home / ".config") / "systemd" / "user" / SYSTEMD_UNIT


def _systemd_word(word: str) -> str:
    word = word.replace("%", "%%") if not word.startswith("%h/") else word
    if any(c in word for c in " \t\"\\'"):
        return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return word


def systemd_unit(layout: Layout) -> str:
    exec_start = " ".join(_systemd_word(w) for w in layout.command)
    return f"""\
# codex-image-server as a systemd user service, written by
# `codex-image-server service install` (deploy/systemd/ holds a copy to
# adapt by hand). Settings: the environment file below.
[Unit]
Description=codex-image-server: local Codex image generation over gRPC and HTTP
Documentation=https://github.com/codex-image-server/codex-image-server#readme

[Service]
Type=exec
ExecStart={exec_start}
# The leading '-': a missing file is no error (the defaults apply).
EnvironmentFile=-{_systemd_word(layout.env_file)}
# SIGTERM to the server alone: it cancels running generations and kills
# their codex process groups itself; whatever is left after the timeout is
# killed with the rest of the unit.
KillMode=mixed
TimeoutStopSec={STOP_TIMEOUT_S}
Restart=on-failure
RestartSec={RESTART_DELAY_S}
# Logs (one JSON line per event): journalctl --user -u {NAME}
StandardOutput=journal
StandardError=journal

[Install]
WantedBy=default.target
"""


def launchd_plist(layout: Layout) -> bytes:
    """launchd has no environment files: the agent runs `service run`, which
    reads the same file and then serves."""
    agent = {
        "Label": LAUNCHD_LABEL,
        "ProgramArguments": [*layout.command, "service", "run", "--env-file", layout.env_file],
        "RunAtLoad": True,
        # Restart when it fails, not after a clean stop.
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": RESTART_DELAY_S,
        "ExitTimeOut": STOP_TIMEOUT_S,
        "StandardOutPath": layout.log_file,
        "StandardErrorPath": layout.log_file,
    }
    return plistlib.dumps(agent, sort_keys=False)


# The copies in deploy/: for the usual pipx install of one user.
DEPLOY_SYSTEMD = Layout(
    command=("%h/.local/bin/codex-image-server",), env_file="%h/.config/codex-image-server/env"
)
DEPLOY_LAUNCHD = Layout(
    command=("/Users/YOU/.local/bin/codex-image-server",),
    env_file="/Users/YOU/.config/codex-image-server/env",
    log_file="/Users/YOU/Library/Logs/codex-image-server/server.log",
)
