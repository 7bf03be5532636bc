"""Structured logs: one JSON object per line on stderr.

Callers pass counts, sizes, ids, durations and outcomes only. Never a key,
a full prompt or image bytes: `log` refuses field names that suggest them.
"""
from __future__ import annotations

import json
import sys
import threading
import time

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
_FORBIDDEN = ("prompt", "key", "authorization", "image_bytes", "data")
_lock = threading.Lock()
_threshold = LEVELS["info"]


def configure(level: str) -> None:
    global _threshold
    _threshold = LEVELS.get(level.lower(), LEVELS["info"])


def log(event: str, level: str = "info", **fields) -> None:
    if LEVELS.get(level, 20) < _threshold:
        return
    for name in fields:
        if name in _FORBIDDEN:
            raise ValueError(f"refusing to log field {name!r}")
    record = {"ts": round(time.time(), 3), "level": level, "event": event, **fields}
    line = json.dumps(record, default=str, separators=(",", ":"))
    with _lock:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
