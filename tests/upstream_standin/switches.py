"""Per-step delay and failure switches of the upstream stand-in.

Switches come from three layers, later ones winning: the defaults given at
construction, runtime changes made by a test (`standin.set(...)`), and a
directive in the prompt text, e.g. ``[[upstream: slow=5 images_status=403]]``.
The directive layer lets one running service serve many test cases: the gRPC
service passes the user's prompt through to codex, codex sends it to us.
"""

from __future__ import annotations

import dataclasses
import re

DIRECTIVE_RE = re.compile(r"\[\[upstream:([^\]]*)\]\]")


@dataclasses.dataclass(frozen=True)
class Switches:
    # Seconds to wait before the first SSE event of a /responses stream
    # (headers are already sent, so codex is mid-request: cancellation tests).
    slow: float = 0.0
    # Seconds to wait between SSE events.
    slow_within: float = 0.0
    # Seconds to wait before answering an Images API request.
    images_slow: float = 0.0
    # Seconds to hold the closing turn (the /responses that follows the tool
    # output) before its first event: the model's closing reply is pending.
    closing_slow: float = 0.0
    # Seconds each model turn takes (before the first event of every
    # /responses stream): the "each model turn takes 1 s" upstream of the
    # finish-early benchmark.
    turn_slow: float = 0.0
    # Make the first /responses stream of a turn end with `response.failed`.
    fail_response: bool = False
    # HTTP status for /responses (0 = normal). 429 answers with a quota body.
    responses_status: int = 0
    # HTTP status for /images/* (0 = normal). 429 answers with a quota body.
    images_status: int = 0
    # End the turn with a text reply and no tool call.
    no_tool: bool = False
    # Size used when the request has none or says "auto".
    default_size: str = "1024x1024"
    # Random, uncompressed pixels: the PNG is about 3 bytes per pixel.
    noise: bool = False
    # Answer `background: "transparent"` with an opaque picture anyway (the
    # reported unreliability): the subject on the key colour the prompt names.
    alpha_lost: bool = False
    # The Images API's safety refusal: 400 with OpenAI's `moderation_blocked`
    # body (what codex turns into "image generation failed: http 400 ...").
    moderation: bool = False

    def merged(self, **changes) -> Switches:
        known = {f.name for f in dataclasses.fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown upstream switches: {sorted(unknown)}")
        return dataclasses.replace(self, **changes)


_BOOL_WORDS = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}


def _coerce(name: str, raw: str):
    field = {f.name: f for f in dataclasses.fields(Switches)}[name]
    kind = field.type if isinstance(field.type, str) else field.type.__name__
    if kind == "bool":
        return _BOOL_WORDS[raw.lower()]
    if kind == "float":
        return float(raw)
    if kind == "int":
        return int(raw)
    return raw


def parse_directive(text: str) -> dict:
    """Switch changes found in `[[upstream: k=v k2=v2 flag]]` directives.

    A bare word (`no_tool`) means true. Unknown names raise, so a typo in a
    test fails loudly instead of silently testing the happy path.
    """
    changes: dict = {}
    known = {f.name for f in dataclasses.fields(Switches)}
    for match in DIRECTIVE_RE.finditer(text):
        for word in match.group(1).replace(",", " ").split():
            name, _, raw = word.partition("=")
            if name not in known:
                raise ValueError(f"unknown upstream switch in directive: {name!r}")
            changes[name] = _coerce(name, raw or "true")
    return changes
