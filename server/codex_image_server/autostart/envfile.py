"""The service's environment file: NAME=value lines, `#` comments, optional
quotes around a value; the subset of systemd's EnvironmentFile syntax that
means the same to systemd and to `codex-image-server service run` (launchd
has no environment files of its own)."""

from __future__ import annotations

import os
import re
from pathlib import Path

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def read(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for number, raw in enumerate(Path(path).read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        match = _LINE.match(line)
        if not match:
            raise ValueError(f"{path}:{number}: not NAME=value: {raw!r}")
        name, value = match.group(1), match.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[name] = value
    return values


def template(path_value: str) -> str:
    """What `service install` writes when there is no file yet."""
    return f"""\
# Settings for codex-image-server when it runs as a service: one NAME=value
# a line, the CODEX_IMAGE_SERVER_* variables `codex-image-server --help`
# lists (no quotes needed; no comments after a value). After a change:
#   codex-image-server service install      (restarts it with the new file)
#
# The service starts with almost no environment: this PATH (your shell's at
# install time) is how it finds `codex`. Or name the binary:
#CODEX_IMAGE_SERVER_CODEX_BIN=/path/to/codex
PATH={path_value}
# Where `codex login` keeps the login (default: ~/.codex):
#CODEX_HOME=/home/you/.codex
#CODEX_IMAGE_SERVER_GRPC_PORT=17342
#CODEX_IMAGE_SERVER_PORT=17341
#CODEX_IMAGE_SERVER_MAX_CONCURRENT=4
#CODEX_IMAGE_SERVER_API_KEY=
#CODEX_IMAGE_SERVER_LOG_LEVEL=info
"""


def ensure(path: Path) -> bool:
    """Writes the template unless the file exists; True when written."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(template(os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")))
    path.chmod(0o600)  # it may hold API keys
    return True
