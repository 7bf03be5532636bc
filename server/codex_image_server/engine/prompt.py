"""What each candidate's codex is told. The caller's prompt goes last, after
our instructions, and reaches codex as one argument after `--`.

Codex (0.169.0-0.171.0) always asks the image model for size "auto", so a pixel size
cannot reach the image API; only words can steer the shape. The prompt names
the orientation and ratio, and asks the model to say them in the image tool's
own prompt, where the image model reads them.
"""

from __future__ import annotations

from codex_image_server.finishing.transparency import hex_color
from codex_image_server.request.params import GenerationSpec
from codex_image_server.request.references import ReferencePlan
from codex_image_server.request.sizes import orientation

_PLAIN = {
    "landscape": "wider than tall",
    "portrait": "taller than wide",
    "square": "as wide as tall",
}


def _shape_lines(spec: GenerationSpec) -> list[str]:
    size = spec.size
    if not size.ratio:
        return []
    w, h = size.ratio
    shape = orientation(w, h)
    approx = f", about {w / h:.2f}:1" if max(w, h) > 32 else ""
    line = f"Image shape: {shape} ({_PLAIN[shape]}), aspect ratio {w}:{h} (width:height{approx})."
    if size.width:
        line += f" Final size {size.width}x{size.height} pixels."
    return [
        line,
        f'Begin the image tool\'s prompt with "A {shape} image, aspect ratio {w}:{h}." and '
        "compose for that frame.",
    ]


def _reference_lines(plan: ReferencePlan) -> list[str]:
    if not plan.paths:
        return []
    listed = ", ".join(f'"{p}"' for p in plan.paths)
    lines = [
        "Reference images are attached. Pass exactly these absolute paths, in this order, as "
        f"referenced_image_paths (never num_last_images_to_include): [{listed}]."
    ]
    for use in plan.uses:
        if use.usage == "original":
            label = f": {use.label}" if use.label else ""
            lines.append(f"- image {use.path_position} is reference #{use.index + 1}{label}")
    sheet = plan.sheet_uses
    if sheet:
        lines.append(
            f"- image {sheet[0].path_position} is a contact sheet of references "
            f"#{sheet[0].index + 1} to #{sheet[-1].index + 1} (the tool takes only "
            f"{len(plan.paths)} images): "
            "each tile is a separate reference, captioned with its number and label; use them as "
            "such, "
            "and do not reproduce the sheet's grid or captions."
        )
        for use in sheet:
            if use.label:
                lines.append(f"  - tile #{use.index + 1}: {use.label}")
    return lines


def build(spec: GenerationSpec, index: int, refs: ReferencePlan) -> str:
    n = spec.count
    lines = [
        "Create exactly one image by calling the image_gen.imagegen tool once, then reply "
        "with one short sentence. Do not run shell commands and do not write files.",
    ]
    if n > 1:
        lines.append(
            f"You are candidate {index + 1} of {n}: make this image clearly different from "
            "the other candidates (composition, viewpoint, palette) while following the brief."
        )
    else:
        lines.append(f"You are candidate {index + 1} of {n}.")
    lines += _shape_lines(spec)
    if spec.quality != "auto":
        lines.append(f"Quality: {spec.quality}.")
    if spec.transparent:
        # Both at once: the tool's own alpha, and a flat key colour to key out
        # locally when that alpha does not come back (see transparency.py).
        key = hex_color(spec.transparent_key)
        lines.append(
            "The image needs a transparent background: call the tool with "
            "transparent_background: true. "
            "Also tell the image tool to draw the subject alone, isolated on a perfectly flat, "
            f"uniform {key} "
            f"background (pure {key}, no gradient, shadow, floor or scenery, not touching the "
            "edges), and "
            f"not to use {key} or similar shades anywhere in the subject."
        )
    elif spec.background == "opaque":
        lines.append("The image needs an opaque background (transparent_background: false).")
    lines += _reference_lines(refs)
    lines.append("Brief:")
    lines.append(spec.prompt or "Create a new image based on the reference images.")
    return "\n".join(lines)
