"""Which codex binary to run: CODEX_IMAGE_SERVER_CODEX_BIN, else the pinned
@openai/codex the Makefile installs into the project, else `codex` on PATH;
and the one command a person runs to install it or log in with it."""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path

# server/codex_image_server/engine/binary.py -> the repository root
PROJECT_ROOT = Path(__file__).resolve().parents[3]
PINNED_PREFIX = PROJECT_ROOT / ".tools" / "codex" / "node_modules"
PINNED_WRAPPER = PINNED_PREFIX / ".bin" / "codex"
PINNED_VERSION = "0.171.0"  # the Makefile's CODEX_VERSION (a test keeps them equal)


def in_checkout() -> bool:
    """Running from a source checkout (where `make codex` works), not from an
    installed package (pip, pipx), whose PROJECT_ROOT is a site-packages' parent."""
    return (PROJECT_ROOT / "Makefile").is_file() and (
        PROJECT_ROOT / "server" / "codex_image_server"
    ).is_dir()


def install_command() -> str:
    if in_checkout():
        return "make codex"
    return f"npm install -g @openai/codex@{PINNED_VERSION}"


def _shown(path: Path) -> str:
    """Relative to the working directory when that is the checkout (`make run`)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def login_command(path: str) -> str:
    """`codex login` spelled with the codex the server runs: the pinned
    install's short wrapper path (not the native binary deep inside it),
    plain `codex` when that is what PATH finds, else the configured path."""
    resolved = Path(path).resolve()
    if resolved.is_relative_to(PINNED_PREFIX.resolve()):
        return f"{_shown(PINNED_WRAPPER)} login"
    # Any other npm install of codex (e.g. `make codex-matrix`'s
    # .tools/codex-<version>): its own wrapper, not the native binary inside.
    for parent in resolved.parents:
        wrapper = parent / ".bin" / "codex"
        if parent.name == "node_modules" and wrapper.exists():
            return f"{_shown(wrapper)} login"
    on_path = shutil.which("codex")
    if on_path and Path(on_path).resolve() == resolved:
        return "codex login"
    return f"{path} login"


def _pinned() -> str | None:
    # Prefer the native binary the npm package ships: the Node wrapper costs a
    # second process per candidate, and if it alone were killed the native
    # child would run on. It must be run in place (codex-resources/ is beside it).
    native = sorted(
        glob.glob(
            str(PINNED_PREFIX / "@openai" / "codex-linux-*" / "vendor" / "*" / "bin" / "codex")
        )
    )
    if native and os.access(native[0], os.X_OK):
        return native[0]
    return str(PINNED_WRAPPER) if os.access(PINNED_WRAPPER, os.X_OK) else None


def resolve(configured: str) -> str | None:
    """The absolute path of the codex binary to use, or None if there is none."""
    if configured:
        path = shutil.which(configured) if os.sep not in configured else configured
        return str(Path(path).resolve()) if path and os.access(path, os.X_OK) else None
    return _pinned() or shutil.which("codex")
