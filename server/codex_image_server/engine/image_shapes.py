"""The shapes in which codex records a generated image, and nothing else.

Three are known (docs/codex-versions.md has the table of versions):
- "legacy": a `response_item` `{type: "image_generation_call", id, status,
  revised_prompt, result}` and an `event_msg` `{type: "image_generation_end",
  call_id, status, revised_prompt, result, saved_path}`; the status may stay
  "generating" although `result` already holds the whole image.
- "extension" (from about 0.149.1; 0.169.0-0.171.0 measured): an `event_msg`
  `item_completed` whose item is `{type: "Extension", kind:
  "image_gen.generation", id, status, revisedPrompt, result, savedPath,
  failure}`; `image_generation_end` is no longer written.
- "app_server_v2": `codex app-server`'s `item/completed` notification with an
  item `{type: "imageGeneration", id, status, revisedPrompt, result,
  savedPath, failure}` (or a `fileId` instead of `result`).

Anything else that evidently carries a generated image is "unknown": codex
made an image this server cannot read, which must fail as CODEX_UNSUPPORTED,
never as "no image".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

LEGACY = "legacy"
EXTENSION = "extension"
APP_SERVER_V2 = "app_server_v2"
SHAPES = (LEGACY, EXTENSION, APP_SERVER_V2)

# A status that means the image is there ("generating" only with a result:
# legacy rollouts left it so with the whole image in `result`).
DONE = ("completed", "generating")

# How each shape shows in a raw (compact JSON) line, for a reader that must
# not parse a line holding megabytes of base64: a marker, and the names of
# the path and prompt fields (the finish-early watcher).
LINE_MARKERS = (
    (b'"image_gen.generation"', "savedPath", "revisedPrompt"),  # extension
    (b'"imageGeneration"', "savedPath", "revisedPrompt"),  # app_server_v2
    (b'"image_generation_end"', "saved_path", "revised_prompt"),  # legacy
    (b'"image_generation_call"', "saved_path", "revised_prompt"),  # legacy
)
_IMAGE_URL_PREFIX = "data:image/"


@dataclasses.dataclass(frozen=True)
class ImageItem:
    shape: str
    status: str
    saved_path: str = ""
    result: str = ""  # base64
    revised_prompt: str = ""
    failure: str = ""
    # The item says it is complete but gives neither path nor bytes (e.g. only
    # an attachment-store `fileId`): an image we cannot reach.
    unreachable: bool = False

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    @property
    def usable(self) -> bool:
        return self.status in DONE and bool(self.saved_path or self.result)


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def _failure(value) -> str:
    if not value:
        return ""
    return value if isinstance(value, str) else str(value)


def item_of(node: dict) -> ImageItem | None:
    """The known image item `node` is, if it is one."""
    kind = node.get("type")
    if kind == "Extension" and node.get("kind") == "image_gen.generation":
        shape = EXTENSION
    elif kind == "imageGeneration":
        shape = APP_SERVER_V2
    elif kind in ("image_generation_call", "image_generation_end"):
        return _legacy(node)
    else:
        return None
    status = _text(node.get("status"))
    saved, result = _text(node.get("savedPath")), _text(node.get("result"))
    if status in ("in_progress", "inProgress"):
        return ImageItem(shape, status)
    return ImageItem(
        shape,
        status,
        saved,
        result,
        _text(node.get("revisedPrompt")),
        _failure(node.get("failure") or node.get("error")),
        unreachable=status == "completed" and not saved and not result,
    )


def _legacy(node: dict) -> ImageItem:
    status = _text(node.get("status"))
    saved, result = _text(node.get("saved_path")), _text(node.get("result"))
    return ImageItem(
        LEGACY,
        status,
        saved,
        result,
        _text(node.get("revised_prompt")),
        _failure(node.get("error")),
        unreachable=status == "completed" and not saved and not result,
    )


def walk(obj) -> Iterator[dict]:
    """Every dict nested anywhere in a record (layouts differ by version)."""
    stack = [obj]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            yield cur
            stack.extend(cur.values())
        elif isinstance(cur, list):
            stack.extend(cur)


# Named for image generation but never an image: a begin event, the hosted
# tool's entry in a tool list.
_NOT_IMAGES = ("image_generation_begin", "image_generation")


def _names_image_generation(value) -> bool:
    text = _text(value)
    if text in _NOT_IMAGES:
        return False
    return "imagegen" in text.lower().replace("_", "").replace(".", "").replace("-", "")


def image_call_id(node: dict) -> str:
    """The call id when `node` is the model's call of codex's image tool."""
    if node.get("type") == "function_call" and (
        node.get("namespace") == "image_gen" or _names_image_generation(node.get("name"))
    ):
        return _text(node.get("call_id"))
    return ""


def _output_has_image(output) -> bool:
    if isinstance(output, dict):
        output = output.get("content_items") or output.get("content")
    return isinstance(output, list) and any(
        isinstance(part, dict) and _text(part.get("image_url")).startswith(_IMAGE_URL_PREFIX)
        for part in output
    )


def unknown_image(node: dict, image_calls: set[str]) -> str:
    """What in `node` (not itself a known item) says codex made an image in a
    shape we do not know, or "". Only the signs a made image leaves: an item
    named for image generation, a `savedPath`, or the image tool's output
    (`image_calls`: its call ids) handing an image back to the model. A
    user's reference images, or `view_image` of one, are no sign."""
    if item_of(node) is not None:
        return ""
    kind = node.get("type")
    if _names_image_generation(kind) or _names_image_generation(node.get("kind")):
        return f"an item of type {_text(kind)!r}" + (
            f" kind {_text(node.get('kind'))!r}" if node.get("kind") else ""
        )
    if _text(node.get("savedPath")) or _text(node.get("saved_path")):
        return f"a savedPath in an item of type {_text(kind)!r}"
    if (
        kind in ("function_call_output", "custom_tool_call_output")
        and node.get("call_id") in image_calls
        and _output_has_image(node.get("output"))
    ):
        return "an image in the image tool's output"
    return ""
