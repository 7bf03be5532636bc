"""Removing codex's own copies once a run is over: the image under
$CODEX_HOME/generated_images/<thread_id>/ and the thread's rollout log.
Only for threads this server started (the caller passes the thread id its
own run reported), and only names that cannot point outside CODEX_HOME."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from codex_image_server.engine.image_locator import find_rollout

_THREAD_ID = re.compile(r"^[A-Za-z0-9_-]{8,128}$")


def remove_thread_files(home: Path, thread_id: str) -> int:
    """Files and directories removed (0 when the id looks wrong)."""
    if not _THREAD_ID.match(thread_id or ""):
        return 0
    removed = 0
    images = home / "generated_images" / thread_id
    if images.is_dir() and not images.is_symlink():
        shutil.rmtree(images, ignore_errors=True)
        removed += 1
    # One rollout per thread: where it is found first, a listing of today's folder.
    rollout = find_rollout(home, thread_id)
    if rollout is not None:
        rollout.unlink(missing_ok=True)
        removed += 1
    return removed
