"""Structured logs: one JSON object per line on stderr, for our events and
for every library's logger in the process (aiohttp, grpc, asyncio, the MCP
SDK), warnings and uncaught exceptions.

Our code logs through `log(event, **fields)` (and `access` for the HTTP
access line) only, never a `logging` logger of its own: one idiom, one shape
of line, one place that refuses secrets. This is the one module of server/
that imports `logging` (tests/layout/test_habits.py keeps it so).

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
    # The MCP SDK logs each session's id at INFO; a session id admits its
    # holder (with the key), so it stays out of the server's log.
    logging.getLogger("mcp").setLevel(logging.WARNING)
    logging.captureWarnings(True)
    sys.excepthook = _uncaught
    threading.excepthook = lambda args: _uncaught(
        args.exc_type,
        args.exc_value,
        args.exc_traceback,
        thread=args.thread.name if args.thread else None,
    )


# One encoder for every line: json.dumps with options builds a new one per call.
_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"), ensure_ascii=True)


_stream = None  # where the lines go; None: sys.stderr, looked up at each write


def write_to(stream):
    """Send the lines to `stream` (None: stderr again) and return where they
    went before: for a server run inside another program (the tests' in-process
    server keeps its lines in its own file, as a server process does)."""
    global _stream
    before, _stream = _stream, stream
    return before


def _emit(text: str) -> None:
    """Under _lock."""
    out = _stream or sys.stderr
    out.write(text)
    out.flush()


def _write(record: dict) -> None:
    line = _ENCODER.encode(record)
    with _lock:
        _emit(line + "\n")


def log(event: str, level: str = "info", **fields) -> None:
    if LEVELS.get(level, 20) < _threshold:
        return
    for name in fields:
        if name in _FORBIDDEN:
            raise ValueError(f"refusing to log field {name!r}")
    _write({"ts": round(time.time(), 3), "level": level, "event": event, **fields})


_soon: list[str] = []
_json_str = json.encoder.encode_basestring_ascii


def _flush_soon() -> None:
    lines = "".join(_soon)
    _soon.clear()
    with _lock:
        _emit(lines)


def access(
    request_id: str,
    method: str,
    path: str,
    status: int,
    nbytes: int,
    duration_ms: int,
    remote: str | None,
) -> None:
    """The HTTP access line: the event loop's busiest log, so formatted
    directly (fixed fields, strings JSON-escaped) and written with the other
    lines of the same loop iteration, one write for many requests."""
    if LEVELS["info"] < _threshold:
        return
    line = (
        '{"ts":%.3f,"level":"info","event":"http.access","request_id":%s,"method":%s,"path":%s,'
        '"status":%d,"bytes":%d,"duration_ms":%d,"remote":%s}\n'
        % (
            time.time(),
            _json_str(request_id),
            _json_str(method),
            _json_str(path),
            status,
            nbytes or 0,
            duration_ms,
            "null" if remote is None else _json_str(remote),
        )
    )
    if not _soon:
        try:
            asyncio.get_running_loop().call_soon(_flush_soon)
        except RuntimeError:  # not on a loop: at once
            _soon.append(line)
            _flush_soon()
            return
    _soon.append(line)


def _uncaught(exc_type, exc_value, tb, thread: str | None = None) -> None:
    if exc_type is not None and issubclass(exc_type, (KeyboardInterrupt, SystemExit)):
        return
    # Where it happened (our code's file and line), not what it said: the
    # message and the locals may quote a caller's bytes.
    where = ""
    while tb is not None:
        where = f"{tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}"
        tb = tb.tb_next
    log(
        "uncaught_exception",
        level="error",
        error_type=getattr(exc_type, "__name__", str(exc_type)),
        thread=thread,
        where=where,
    )


class JsonHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = str(record.msg)
            fields = {
                "ts": round(record.created, 3),
                "level": record.levelname.lower(),
                "event": "log",
                "logger": record.name,
                "message": text[:_TEMPLATE_CHARS],
            }
            if record.exc_info and record.exc_info[0] is not None:
                fields["error_type"] = record.exc_info[0].__name__
            _write(fields)
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)
