"""Answers and errors -> MCP tool results.

An image goes back as MCP image content (base64 and its MIME type) plus a
resource link to `codex-image://images/{id}`, with a short text and the same
facts as `structuredContent`. An image larger than the inline limit goes as
the link alone, and the text says so: hosts cap a tool result's size (the
default limit, 3,750,000 bytes, is what base64 turns into 5 MB, the largest
image Anthropic's API accepts in a message), and a link can be read later as
a resource.

Errors are tool results with isError: the text names each bad field and
what to do, as the service said it; the structured error carries the code,
the reason and the violations.
"""

from __future__ import annotations

import base64
import dataclasses

from codeximage.v1 import image_service_pb2 as pb
from mcp import types

from ..errors import ClientError
from .arguments import ArgumentError
from .backend import IMAGE_URI_PREFIX


def uri(image_id: str) -> str:
    return IMAGE_URI_PREFIX + image_id


def link(image: pb.Image) -> types.ResourceLink:
    return types.ResourceLink(
        uri=uri(image.id),
        name=image.id,
        mime_type=image.mime_type or None,
        size=image.byte_size or None,
        description=f"{image.width}x{image.height} {image.output_format or image.mime_type}",
    )


def facts(image: pb.Image, inline: bool) -> dict:
    """What the text and structuredContent say about one image."""
    entry = {
        "id": image.id,
        "uri": uri(image.id),
        "size": f"{image.width}x{image.height}",
        "width": image.width,
        "height": image.height,
        "mime_type": image.mime_type,
        "byte_size": image.byte_size,
        "sha256": image.sha256,
        "request_id": image.request_id,
        "index": image.index,
        "inline": inline,
        "file_path": image.file_path,
    }
    if image.revised_prompt:
        entry["revised_prompt"] = image.revised_prompt
    if image.target_size:
        entry["target_size"] = image.target_size
    if image.resized:
        entry["resized_from"] = f"{image.native_width}x{image.native_height}"
    if image.background:
        entry["background"] = image.background
    return entry


def reference_uses(uses) -> list[dict]:
    return [
        {
            "index": u.index,
            "label": u.label,
            "usage": u.usage,
            "path_position": u.path_position,
            **({"tile": u.tile} if u.tile else {}),
            "size": f"{u.width}x{u.height}",
        }
        for u in uses
    ]


def _reference_line(uses: list[dict]) -> str:
    if not uses:
        return "No references."
    parts = []
    for u in uses:
        how = (
            "passed byte-identical"
            if u["usage"] == "original"
            else f"tile {u.get('tile')} of the contact sheet"
        )
        parts.append(
            f"#{u['index'] + 1} {u['label'] or ''} ({u['size']}): {how}".replace("  ", " ")
        )
    return "References: " + "; ".join(parts) + "."


def images(
    images_: list[pb.Image],
    files: list[bytes | None],
    inline_max: int,
    summary: pb.GenerateSummary | None = None,
) -> types.CallToolResult:
    """Images with their bytes (None: not read, too large to inline)."""
    content: list = []
    entries, too_large = [], []
    for image, data in zip(images_, files, strict=True):
        inline = data is not None
        if data is not None:
            content.append(
                types.ImageContent(data=base64.b64encode(data).decode(), mime_type=image.mime_type)
            )
        else:
            too_large.append(image.id)
        content.append(link(image))
        entries.append(facts(image, inline))
    lines = [
        f"{len(entries)} image{'s' if len(entries) != 1 else ''}: "
        + ", ".join(f"{e['id']} {e['size']} {e['mime_type']}" for e in entries)
        + "."
    ]
    structured: dict = {"images": entries}
    if summary is not None:
        uses = reference_uses(summary.references)
        structured.update(
            {
                "request_id": summary.request_id,
                "references": uses,
                "requested_size": summary.requested_size,
                "target_size": summary.target_size,
            }
        )
        lines.append(_reference_line(uses))
    if too_large:
        lines.append(
            f"Larger than {inline_max} bytes, so given as links only (read them as resources): "
            + ", ".join(too_large)
            + "."
        )
    structured["links_only"] = too_large
    content.insert(0, types.TextContent(text=" ".join(lines)))
    return types.CallToolResult(content=content, structured_content=structured)


def data(value: dict, text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=value)


def error(
    tool: str, exc: Exception, *, hint: str = "", rename: tuple[str, str] | None = None
) -> types.CallToolResult:
    """A refused or failed call as a tool error naming each field and the fix.
    `hint`: what to do instead of the message (no server answers); `rename`:
    (the service's field name, the tool's) where they differ."""
    if isinstance(exc, ArgumentError):
        body = {
            "code": "INVALID_ARGUMENT",
            "reason": "INVALID_ARGUMENT",
            "message": str(exc),
            "violations": [
                {"field": exc.field, "description": exc.description, "reason": "INVALID_ARGUMENT"}
            ],
        }
        text = f"{tool}: invalid argument `{exc.field}`: {exc.description}." + (
            f" Fix: {exc.fix}." if exc.fix else ""
        )
    else:
        assert isinstance(exc, ClientError)
        if rename:
            exc.violations = tuple(
                dataclasses.replace(v, field=_renamed(v.field, *rename)) for v in exc.violations
            )
        body = {
            "code": exc.code.name,
            "reason": exc.reason,
            "message": exc.message,
            "violations": [
                {"field": v.field, "description": v.description, "reason": v.reason}
                for v in exc.violations
            ],
        }
        text = f"{tool} failed: {hint or exc}"
        fields = list(dict.fromkeys(v.field for v in exc.violations))
        if fields:
            text += (
                "\nFix " + ", ".join(f"`{f}`" for f in fields) + " as said above and call again; "
                "`capabilities` lists the choices."
            )
        if exc.retry_delay_s is not None:
            text += f"\nRetry after {exc.retry_delay_s:.0f} s."
    return types.CallToolResult(
        content=[types.TextContent(text=text)], structured_content={"error": body}, is_error=True
    )


def _renamed(field: str, old: str, new: str) -> str:
    return (
        new + field[len(old) :]
        if field == old or field.startswith((old + "[", old + "."))
        else field
    )
