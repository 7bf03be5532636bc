"""Which codex binary to run: CODEX_IMAGE_SERVER_CODEX_BIN, else the pinned
@openai/codex the Makefile installs into the project, else `codex` on PATH."""
from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path

# server/codex_image_server/engine/binary.py -> the repository root
PROJECT_ROOT = Path(__file__).resolve().parents[3]
PINNED_PREFIX = PROJECT_ROOT / ".tools" / "codex" / "node_modules"


def _pinned() -> str | None:
    # Prefer the native binary the npm package ships: the Node wrapper costs a
    # second process per candidate, and if it alone were killed the native
    # child would run on. It must be run in place (codex-resources/ is beside it).
    native = sorted(glob.glob(str(PINNED_PREFIX / "@openai" / "codex-linux-*" / "vendor" / "*" / "bin" / "codex")))
    if native and os.access(native[0], os.X_OK):
        return native[0]
    wrapper = PINNED_PREFIX / ".bin" / "codex"
    return str(wrapper) if os.access(wrapper, os.X_OK) else None


def resolve(configured: str) -> str | None:
    """The absolute path of the codex binary to use, or None if there is none."""
    if configured:
        path = shutil.which(configured) if os.sep not in configured else configured
        return str(Path(path).resolve()) if path and os.access(path, os.X_OK) else None
    return _pinned() or shutil.which("codex")
