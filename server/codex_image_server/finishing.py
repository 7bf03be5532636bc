"""What happens to codex's image before it is stored: a transparent
background made real and verified, then the asked-for format, compression
and (for `opaque`) no alpha."""
from __future__ import annotations

import dataclasses

from . import imaging, sizes, transparency
from .request import GenerationSpec


@dataclasses.dataclass(frozen=True)
class Finished:
    data: bytes
    info: imaging.ImageInfo
    # For a transparent background: the path that made the alpha and its figures.
    transparent: transparency.Transparent | None = None


def finish(spec: GenerationSpec, data: bytes, info: imaging.ImageInfo) -> Finished:
    made = None
    if spec.transparent:
        made = transparency.make_transparent(data, spec.key_color)
        data, info = made.png, imaging.ImageInfo("image/png", info.width, info.height)
    opaque = spec.background == "opaque" and imaging.alpha_of(data)
    if info.mime_type != spec.mime_type or opaque or (
            spec.output_compression is not None and spec.output_format != "png"):
        data = imaging.convert(data, spec.output_format, spec.output_compression, opaque=opaque)
        info = imaging.inspect(data, sizes.OUTPUT_PIXEL_LIMIT)
    return Finished(data, info, made)
