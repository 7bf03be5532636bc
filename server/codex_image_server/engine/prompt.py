"""What each candidate's codex is told. The caller's prompt goes last, after
our instructions, and reaches codex as one argument after `--`."""
from __future__ import annotations

from pathlib import Path

from ..request import GenerationSpec
from ..transparency import hex_color


def build(spec: GenerationSpec, index: int, reference_paths: list[Path]) -> str:
    n = spec.count
    lines = [
        "Create exactly one image by calling the image_gen.imagegen tool once, then reply "
        "with one short sentence. Do not run shell commands and do not write files.",
    ]
    if n > 1:
        lines.append(f"You are candidate {index + 1} of {n}: make this image clearly different from "
                     "the other candidates (composition, viewpoint, palette) while following the brief.")
    else:
        lines.append(f"You are candidate {index + 1} of {n}.")
    if spec.size.width:
        lines.append(f"Target size: {spec.size.width}x{spec.size.height} pixels.")
    if spec.quality != "auto":
        lines.append(f"Quality: {spec.quality}.")
    if spec.transparent:
        # Both at once: the tool's own alpha, and a flat key colour to key out
        # locally when that alpha does not come back (see transparency.py).
        key = hex_color(spec.key_color)
        lines.append(
            "The image needs a transparent background: call the tool with transparent_background: true. "
            f"Also tell the image tool to draw the subject alone, isolated on a perfectly flat, uniform {key} "
            f"background (pure {key}, no gradient, shadow, floor or scenery, not touching the edges), and "
            f"not to use {key} or similar shades anywhere in the subject.")
    elif spec.background == "opaque":
        lines.append("The image needs an opaque background (transparent_background: false).")
    if reference_paths:
        listed = ", ".join(f'"{p}"' for p in reference_paths)
        lines.append(
            "Reference images are attached. Pass exactly these absolute paths, in this order, as "
            f"referenced_image_paths (never num_last_images_to_include): [{listed}].")
        for ref, path in zip(spec.references, reference_paths):
            if ref.label:
                lines.append(f"- {path.name}: {ref.label}")
    lines.append("Brief:")
    lines.append(spec.prompt or "Create a new image based on the reference images.")
    return "\n".join(lines)
