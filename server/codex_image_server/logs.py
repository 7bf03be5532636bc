"""Structured logs: one JSON object per line on stderr, for every logger in
the process (ours, aiohttp, grpc, asyncio, warnings, uncaught exceptions).

Callers pass counts, sizes, ids, durations and outcomes only. Never a key,
a full prompt or image bytes: `log` refuses field names that suggest them.
Libraries' records keep their message template but drop its arguments and
any traceback (those may quote a caller's bytes or headers): the exception's
type is kept, so a failure still shows what kind it was.
"""
from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
import time

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
_FORBIDDEN = ("prompt", "key", "authorization", "image_bytes", "data")
_OWN_LOGGERS = ("codex_image_server", "codex_image_shim")
_TEMPLATE_CHARS = 200
_lock = threading.Lock()
_threshold = LEVELS["info"]


def configure(level: str) -> None:
    global _threshold
    _threshold = LEVELS.get(level.lower(), LEVELS["info"])
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(JsonHandler())
    root.setLevel(_threshold)
    for name in ("aiohttp", "grpc", "asyncio"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.captureWarnings(True)
    sys.excepthook = _uncaught
    threading.excepthook = lambda args: _uncaught(args.exc_type, args.exc_value, args.exc_traceback,
                                                  thread=args.thread.name if args.thread else None)


# One encoder for every line: json.dumps with options builds a new one per call.
_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"), ensure_ascii=True)


def _line(record: dict) -> str:
    return _ENCODER.encode(record)


def _write(record: dict) -> None:
    line = _line(record)
    with _lock:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def _record(event: str, level: str, fields: dict) -> dict | None:
    if LEVELS.get(level, 20) < _threshold:
        return None
    for name in fields:
        if name in _FORBIDDEN:
            raise ValueError(f"refusing to log field {name!r}")
    return {"ts": round(time.time(), 3), "level": level, "event": event, **fields}


def log(event: str, level: str = "info", **fields) -> None:
    record = _record(event, level, fields)
    if record is not None:
        _write(record)


_soon: list[str] = []


def _write_soon() -> None:
    lines = "".join(_soon)
    _soon.clear()
    with _lock:
        sys.stderr.write(lines)
        sys.stderr.flush()


def log_soon(event: str, level: str = "info", **fields) -> None:
    """`log` for the event loop's busiest path (the access log): the lines of
    one loop iteration go out together at its end, one write for many
    requests instead of one each. Off the loop it is `log`."""
    record = _record(event, level, fields)
    if record is None:
        return
    if not _soon:
        try:
            asyncio.get_running_loop().call_soon(_write_soon)
        except RuntimeError:
            _write(record)
            return
    _soon.append(_line(record) + "\n")


def _uncaught(exc_type, exc_value, tb, thread: str | None = None) -> None:
    if exc_type is not None and issubclass(exc_type, (KeyboardInterrupt, SystemExit)):
        return
    # Where it happened (our code's file and line), not what it said: the
    # message and the locals may quote a caller's bytes.
    where = ""
    while tb is not None:
        where = f"{tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}"
        tb = tb.tb_next
    log("uncaught_exception", level="error", error_type=getattr(exc_type, "__name__", str(exc_type)),
        thread=thread, where=where)


class JsonHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            own = record.name.startswith(_OWN_LOGGERS)
            text = record.getMessage() if own else str(record.msg)
            fields = {"ts": round(record.created, 3), "level": record.levelname.lower(),
                      "event": "log", "logger": record.name, "message": text[:_TEMPLATE_CHARS]}
            if record.exc_info and record.exc_info[0] is not None:
                fields["error_type"] = record.exc_info[0].__name__
            _write(fields)
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)
