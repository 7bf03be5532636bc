"""Reading codex's `--json` JSONL stream: the thread id, the phases worth
showing a caller, and the text a failure can be explained with."""

from __future__ import annotations

import dataclasses
import json

from codex_image_server.engine.safe_text import safe


@dataclasses.dataclass
class TurnLog:
    """What one codex run said about itself on stdout."""

    thread_id: str = ""
    last_message: str = ""
    errors: list[str] = dataclasses.field(default_factory=list)
    # Item-level "error"s are warnings: 0.169.0 starts every turn with one.
    warnings: list[str] = dataclasses.field(default_factory=list)
    turn_failed: str = ""
    turn_completed: bool = False
    # turn.completed's token counts (input_tokens, cached_input_tokens, output_tokens).
    usage: dict | None = None


def parse_line(line: str) -> dict | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def absorb(log: TurnLog, event: dict) -> tuple[str, str] | None:
    """Record `event` into `log`; return (phase, detail) if a caller should see it."""
    kind = event.get("type", "")
    if kind == "thread.started":
        log.thread_id = str(event.get("thread_id", ""))
        return kind, ""
    if kind == "turn.started":
        return kind, ""
    if kind == "turn.completed":
        log.turn_completed = True
        usage = event.get("usage")
        if isinstance(usage, dict):
            log.usage = {
                k: int(v)
                for k, v in usage.items()
                if isinstance(v, int) and not isinstance(v, bool)
            }
        return kind, ""
    if kind == "turn.failed":
        log.turn_failed = _message(event.get("error")) or "turn failed"
        return kind, safe(log.turn_failed)
    if kind == "error":
        text = _message(event)
        if text:
            log.errors.append(text)
        return kind, safe(text)
    if kind in ("item.started", "item.completed"):
        item = event.get("item") or {}
        item_type = str(item.get("type", "item"))
        if kind == "item.completed" and item_type == "agent_message":
            log.last_message = str(item.get("text", ""))
            return item_type, safe(log.last_message)
        if item_type == "error":
            text = _message(item)
            if text:
                log.warnings.append(text)
            return "warning", safe(text)
        # Show when a phase starts; its completion adds nothing for a caller.
        if kind == "item.started" or item_type not in ("reasoning", "agent_message"):
            return item_type, ""
    return None


def _message(obj) -> str:
    if isinstance(obj, dict):
        return str(obj.get("message") or obj.get("text") or "")
    return str(obj or "")
