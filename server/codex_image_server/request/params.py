"""A generation request in the domain's terms: what the caller asked for
(`GenerateParams`) and what validation made of it (`GenerationSpec`)."""

from __future__ import annotations

import dataclasses

from codex_image_server.request.sizes import ResolvedSize

QUALITIES = ("auto", "high", "medium", "low")
OUTPUT_FORMATS = ("png", "jpeg", "webp")
MAX_COUNT = 4


@dataclasses.dataclass(frozen=True)
class ReferenceInput:
    image: bytes | memoryview  # over gRPC, a view into the request as it came (grpc_api/wire.py)
    mime_type: str = ""
    label: str = ""
    source: str = ""
    width: int = 0  # as the caller declares it; 0 = not given
    height: int = 0


@dataclasses.dataclass(frozen=True)
class GenerateParams:
    prompt: str = ""
    count: int = 0
    size: str = ""
    aspect: str = ""
    quality: str = ""
    output_format: str = ""
    references: tuple[ReferenceInput, ...] = ()
    request_id: str = ""
    background: str = ""
    output_compression: int | None = None
    canvas_size: tuple[int, int] | None = None  # as given; None when not sent
    fit: str = ""


@dataclasses.dataclass(frozen=True)
class Reference:
    """A checked reference image: bytes kept exactly as the caller sent them."""

    index: int
    image: bytes | memoryview
    mime_type: str
    width: int  # decoded from the bytes
    height: int
    label: str
    source: str = ""


@dataclasses.dataclass(frozen=True)
class GenerationSpec:
    request_id: str
    prompt: str
    count: int
    size: ResolvedSize
    aspect: str
    quality: str
    output_format: str
    references: tuple[Reference, ...]
    background: str = "auto"
    # jpeg/webp encoder quality; None: the default.
    output_compression: int | None = None
    # For a transparent background: the flat colour the subject is drawn on.
    key_color: tuple[int, int, int] | None = None

    @property
    def transparent(self) -> bool:
        return self.background == "transparent"

    @property
    def transparent_key(self) -> tuple[int, int, int]:
        """The colour to key out of a transparent request's image (validation sets it)."""
        if self.key_color is None:
            raise ValueError("only a transparent request has a key colour")
        return self.key_color

    fit: str = "exact"  # "exact" or "native"; only matters when size.width is set

    @property
    def mime_type(self) -> str:
        return {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}[self.output_format]
