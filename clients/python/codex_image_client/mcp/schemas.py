"""The tools and their input schemas.

The choices come from the server's own capabilities (GetCapabilities: the
sizes, aspects, qualities, formats, backgrounds and fits it accepts, its
count and reference limits), so the schemas say what the service's
validation says, and a server with other limits lists other choices. Without
capabilities (the stdio bridge before a server answers) the same fields are
plain strings; the service still checks every value and names the field.
"""

from __future__ import annotations

from typing import Any

from codeximage.v1 import image_service_pb2 as pb
from mcp import types

GENERATE = "generate_image"
EDIT = "edit_image"
LIST = "list_images"
GET = "get_image"
CAPABILITIES = "capabilities"

IMAGE_ID_PATTERN = r"^img_[0-9a-f]{32}$"
_WXH = r"^[1-9][0-9]{1,4}x[1-9][0-9]{1,4}$"
_UNKNOWN = (
    " (the server did not answer when the tools were listed; call `capabilities` for the choices)"
)


def _choice(description: str, values, caps_known: bool) -> dict:
    schema: dict[str, Any] = {"type": "string", "description": description}
    if caps_known and values:
        schema["enum"] = list(values)
    elif not caps_known:
        schema["description"] += _UNKNOWN
    return schema


def _aspects(caps: pb.GetCapabilitiesResponse) -> list[str]:
    names = []
    for option in caps.aspect_options:
        names += [option.name, *option.aliases]
    return list(dict.fromkeys(names))


def _size(caps: pb.GetCapabilitiesResponse | None) -> dict:
    description = (
        '"auto", an exact "WxH" (e.g. "1536x1024": the image is delivered at exactly that size) '
        'or a preset "1K", "2K", "4K" (with `aspect`)'
    )
    if caps is None:
        return {"type": "string", "description": description + _UNKNOWN}
    c = caps.size_constraints
    if c.custom_size:
        description += (
            f"; a custom WxH needs both sides multiples of {c.multiple_of}, the long edge at most "
            f"{c.max_edge}, {c.min_pixels}-{c.max_pixels} pixels and a ratio within {c.max_ratio}"
        )
        return {
            "description": description,
            "anyOf": [
                {"type": "string", "enum": list(caps.size_options)},
                {"type": "string", "pattern": _WXH},
            ],
        }
    return {"type": "string", "description": description, "enum": list(caps.size_options)}


def _references(
    caps: pb.GetCapabilitiesResponse | None, paths: str, what: str, min_items: int
) -> dict:
    limit = caps.references.max_images if caps is not None else None
    originals = caps.references.max_originals if caps is not None else 4
    schema: dict[str, Any] = {
        "type": "array",
        "items": {"type": "string"},
        "description": (
            f"{what}: each a data URL (data:image/png;base64,...), the id of a stored image "
            f"(img_...){paths}. "
            f"The first {originals} reach the image model byte-identical; any more share one "
            "contact sheet."
        ),
    }
    if min_items:
        schema["minItems"] = min_items
    if limit:
        schema["maxItems"] = limit
    return schema


def _options(caps: pb.GetCapabilitiesResponse | None) -> dict:
    """The fields generate_image and edit_image share."""
    known = caps is not None
    c = caps or pb.GetCapabilitiesResponse()
    count = {
        "type": "integer",
        "minimum": 1,
        "description": "how many candidates to make (default 1)",
    }
    if known:
        count["maximum"] = c.max_images
    return {
        "count": count,
        "size": _size(caps),
        "aspect": _choice(
            'the ratio for a preset size, or where it comes from ("reference": the first '
            "reference's own)",
            _aspects(c),
            known,
        ),
        "quality": _choice("rendering quality", c.qualities, known),
        "output_format": _choice("file format of the images", c.output_formats, known),
        "background": _choice(
            '"transparent" makes a real alpha channel (checked before it is delivered; '
            "needs png or webp)",
            c.backgrounds,
            known,
        ),
        "output_compression": {
            "type": "integer",
            "minimum": 0,
            "maximum": 100,
            "description": "encoder quality for jpeg and webp (default 95)",
        },
        "fit": _choice(
            '"exact" (default) delivers exactly the size asked; "native" the model\'s own size',
            c.fits,
            known,
        ),
        "request_id": {
            "type": "string",
            "pattern": r"^[A-Za-z0-9._-]{1,64}$",
            "description": "your id for this request (default: one is made up)",
        },
    }


def _object(properties: dict, required: list[str]) -> dict:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def tools(caps: pb.GetCapabilitiesResponse | None, paths: str) -> list[types.Tool]:
    """`paths`: how this transport takes file paths, as the end of a list
    (", or a file path ..."), or why it takes none."""
    prompt = {"type": "string", "description": "what to draw (or, for an edit, what to change)"}
    making = types.ToolAnnotations(
        read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
    )
    reading = types.ToolAnnotations(read_only_hint=True, open_world_hint=False)
    return [
        types.Tool(
            name=GENERATE,
            title="Generate images",
            annotations=making,
            description=(
                "Make 1-4 image candidates with Codex's image model at an exact size, quality "
                "and format, "
                "optionally from reference images. Returns each image (or a link when it is too "
                "large to "
                "inline), its id and size; progress is reported per candidate; cancelling stops "
                "the run."
            ),
            input_schema=_object(
                {
                    "prompt": prompt,
                    **_options(caps),
                    "references": _references(caps, paths, "reference images", 0),
                },
                ["prompt"],
            ),
        ),
        types.Tool(
            name=EDIT,
            title="Edit images",
            annotations=making,
            description=(
                "Change existing images as the prompt says: `images` go to the model as "
                "references (the first "
                "four byte-identical), the result is new images at the size asked (default: the "
                "first image's "
                "ratio). Same options and answer as generate_image."
            ),
            input_schema=_object(
                {
                    "images": _references(caps, paths, "the images to edit", 1),
                    "prompt": prompt,
                    **_options(caps),
                },
                ["images", "prompt"],
            ),
        ),
        types.Tool(
            name=LIST,
            title="List stored images",
            annotations=reading,
            description=(
                "Stored images, newest first, a page at a time; filter by prompt text or request "
                "id."
            ),
            input_schema=_object(
                {
                    "prompt_contains": {
                        "type": "string",
                        "description": "only images whose prompt contains this "
                        "text (case-insensitive)",
                    },
                    "request_id": {
                        "type": "string",
                        "description": "only the images of this request",
                    },
                    "page_size": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 1000,
                        "description": "at most this many (default 50)",
                    },
                    "page_token": {
                        "type": "string",
                        "description": "`next_page_token` of the previous page",
                    },
                },
                [],
            ),
        ),
        types.Tool(
            name=GET,
            title="Get a stored image",
            annotations=reading,
            description=(
                "One stored image by id: the image itself (or a link when too large) and its "
                "metadata."
            ),
            input_schema=_object(
                {
                    "image_id": {
                        "type": "string",
                        "pattern": IMAGE_ID_PATTERN,
                        "description": "the image's id (img_ + 32 hex digits)",
                    }
                },
                ["image_id"],
            ),
        ),
        types.Tool(
            name=CAPABILITIES,
            title="Capabilities",
            annotations=reading,
            description=(
                "What this server can make: sizes and their limits, aspects, qualities, formats, "
                "backgrounds, "
                "count and reference limits."
            ),
            input_schema=_object({}, []),
        ),
    ]
