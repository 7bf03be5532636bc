"""The Responses API events the stand-in streams, as (event, data) pairs.

Shapes follow codex-notes.md ("The stand-in must answer") and what 0.169.0
was measured to accept (see FINDINGS.md).
"""

from __future__ import annotations

import json
import uuid


def _usage() -> dict:
    return {
        "input_tokens": 100,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 20,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 120,
    }


def message(text: str) -> dict:
    return {
        "type": "message",
        "role": "assistant",
        "id": "msg_" + uuid.uuid4().hex[:16],
        "content": [{"type": "output_text", "text": text}],
    }


def imagegen_call(prompt: str, referenced_paths: list[str], transparent: bool = False) -> dict:
    args = {"prompt": prompt}
    if referenced_paths:
        args["referenced_image_paths"] = referenced_paths
    if transparent:
        args["transparent_background"] = True
    return {
        "type": "function_call",
        "id": "fc_" + uuid.uuid4().hex[:16],
        "call_id": "call_" + uuid.uuid4().hex[:16],
        "namespace": "image_gen",
        "name": "imagegen",
        "arguments": json.dumps(args),
    }


def function_call(name: str, args: dict) -> dict:
    """A plain (un-namespaced) tool call, e.g. the shell's `exec_command`."""
    return {
        "type": "function_call",
        "id": "fc_" + uuid.uuid4().hex[:16],
        "call_id": "call_" + uuid.uuid4().hex[:16],
        "name": name,
        "arguments": json.dumps(args),
    }


def completed_stream(items: list[dict]) -> list[tuple[str, dict]]:
    """`response.created`, one `output_item.done` per item, `response.completed`."""
    response_id = "resp_" + uuid.uuid4().hex[:16]
    events = [("response.created", {"type": "response.created", "response": {"id": response_id}})]
    for item in items:
        events.append(
            ("response.output_item.done", {"type": "response.output_item.done", "item": item})
        )
    events.append(
        (
            "response.completed",
            {
                "type": "response.completed",
                "response": {"id": response_id, "usage": _usage()},
            },
        )
    )
    return events


def failed_stream(message_text: str) -> list[tuple[str, dict]]:
    response_id = "resp_" + uuid.uuid4().hex[:16]
    return [
        ("response.created", {"type": "response.created", "response": {"id": response_id}}),
        (
            "response.failed",
            {
                "type": "response.failed",
                "response": {
                    "id": response_id,
                    "error": {"code": "server_error", "message": message_text},
                },
            },
        ),
    ]


def encode(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def quota_body(resets_at: int) -> dict:
    """The 429 body of an exhausted plan, as the ChatGPT backend words it."""
    return {
        "error": {
            "type": "usage_limit_reached",
            "code": "usage_limit_reached",
            "message": "The usage limit has been reached",
            "plan_type": "plus",
            "resets_at": resets_at,
            "resets_in_seconds": 3600,
        }
    }


def moderation_body() -> dict:
    """The Images API's 400 for a prompt its safety system refuses (OpenAI's
    documented error shape for gpt-image models)."""
    return {
        "error": {
            "type": "image_generation_user_error",
            "code": "moderation_blocked",
            "param": None,
            "message": "Your request was rejected by the safety system. "
            "If you believe this is an error, contact us at help.openai.com "
            "and include the request ID req_standin.",
        }
    }
