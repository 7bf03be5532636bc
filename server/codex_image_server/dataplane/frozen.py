"""Answers that never change for the server's life (capabilities), encoded
once per form: the gRPC wire bytes and the shim's JSON bytes are made the
first time they are asked for and reused for every later call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_FROZEN: dict[int, tuple[object, dict[str, bytes]]] = {}


def freeze(message):
    """Mark `message` as never changing again; returns it."""
    _FROZEN[id(message)] = (message, {})
    return message


def thaw(message) -> None:
    """Forget a frozen `message` (an answer that has been replaced)."""
    entry = _FROZEN.get(id(message))
    if entry is not None and entry[0] is message:
        del _FROZEN[id(message)]


def encoded(message, form: str, encode: Callable[[Any], bytes]) -> bytes:
    """`encode(message)`, made once per form for a frozen message."""
    entry = _FROZEN.get(id(message))
    if entry is None or entry[0] is not message:
        return encode(message)
    forms = entry[1]
    if form not in forms:
        forms[form] = encode(message)
    return forms[form]


def wire(message) -> bytes:
    """The gRPC response serializer."""
    return encoded(message, "wire", lambda m: m.SerializeToString())
