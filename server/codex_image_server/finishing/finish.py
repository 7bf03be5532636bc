"""What happens to codex's image before it is stored: a transparent
background made real and verified (on the model's own pixels, before any
resampling), then delivery (exact size, format, compression, and for
`opaque` no alpha)."""

from __future__ import annotations

import dataclasses

from codex_image_server.finishing import transparency
from codex_image_server.request import imaging
from codex_image_server.request.params import GenerationSpec


@dataclasses.dataclass(frozen=True)
class Finished:
    delivered: imaging.Delivered
    # For a transparent background: the path that made the alpha and the
    # figures of the image as delivered.
    transparent: transparency.Transparent | None = None


def finish(spec: GenerationSpec, data: bytes, native: imaging.ImageInfo) -> Finished:
    made = None
    info = native
    if spec.transparent:
        made = transparency.make_transparent(data, spec.transparent_key)
        data, info = made.png, imaging.ImageInfo("image/png", native.width, native.height)
    target = (
        (spec.size.width, spec.size.height) if spec.size.width and spec.fit == "exact" else None
    )
    delivered = imaging.deliver(
        data,
        info,
        spec.output_format,
        target,
        quality=spec.output_compression,
        opaque=spec.background == "opaque",
    )
    if made is not None and delivered.resized:
        made = transparency.remeasured(made, delivered.data, spec.transparent_key)
    return Finished(delivered, made)
