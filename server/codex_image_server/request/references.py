"""How a request's references reach the image model.

Codex's image tool takes at most 5 `referenced_image_paths`, and a path is
read from disk and sent upstream byte-identical at any size (codex-notes.md).
So: with up to 5 references every one goes as an original; with more, the
first four go as originals and the rest are tiled, each labelled with its
number and label, into one contact sheet passed as the fifth path. The sheet
is as sharp as the 3072 px edge allows (tiles up to 1024 px, downscaled with
Lanczos, never enlarged), and a JPEG at high quality, so that 12 photos stay a
few megabytes for the upload.
"""

from __future__ import annotations

import dataclasses
import io
import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

from codex_image_server.request import imaging
from codex_image_server.request.imaging import EXTENSION_BY_MIME
from codex_image_server.request.params import Reference

MAX_PATHS = 5  # codex 0.169.0's imagegen tool
ORIGINALS_WITH_SHEET = MAX_PATHS - 1
SHEET_MAX_EDGE = 3072
TILE_MAX_EDGE = 1024
_GAP = 16
_CAPTION = 44
_BACKGROUND = (236, 236, 236)


@dataclasses.dataclass(frozen=True)
class ReferenceUse:
    index: int  # 0-based position in the request
    label: str
    source: str
    usage: str  # "original" | "contact_sheet"
    path_position: int  # 1-based position among the tool's paths
    tile: int  # 1-based tile on the sheet; 0 for originals
    width: int
    height: int


@dataclasses.dataclass(frozen=True)
class ReferencePlan:
    paths: tuple[Path, ...]  # in the order the tool gets them
    uses: tuple[ReferenceUse, ...]

    @property
    def sheet_uses(self) -> tuple[ReferenceUse, ...]:
        return tuple(u for u in self.uses if u.usage == "contact_sheet")


def plan(refs: tuple[Reference, ...]) -> tuple[ReferenceUse, ...]:
    """Which reference goes where; no I/O."""
    originals = len(refs) if len(refs) <= MAX_PATHS else ORIGINALS_WITH_SHEET
    uses = []
    for n, ref in enumerate(refs):
        if n < originals:
            uses.append(
                ReferenceUse(
                    ref.index, ref.label, ref.source, "original", n + 1, 0, ref.width, ref.height
                )
            )
        else:
            uses.append(
                ReferenceUse(
                    ref.index,
                    ref.label,
                    ref.source,
                    "contact_sheet",
                    MAX_PATHS,
                    n - originals + 1,
                    ref.width,
                    ref.height,
                )
            )
    return tuple(uses)


def file_name(ref: Reference) -> str:
    return f"reference-{ref.index + 1}.{EXTENSION_BY_MIME[ref.mime_type]}"


def spill(refs: tuple[Reference, ...], directory: Path) -> tuple[Path, ...]:
    """Every reference byte for byte into `directory`, as soon as the request
    is admitted: from then on it is read from disk (the page cache), and a
    request waiting for a slot holds no reference bytes in memory."""
    if not refs:
        return ()
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for ref in refs:
        path = directory / file_name(ref)
        path.write_bytes(ref.image)
        paths.append(path.resolve())
    return tuple(paths)


def arrange(refs: tuple[Reference, ...], files: tuple[Path, ...]) -> ReferencePlan:
    """The tool's paths from the spilled files: the originals as they are,
    then the sheet (if any) in their directory. A tiled file goes once it is
    on the sheet, so the directory holds only what codex is given."""
    uses = plan(refs)
    paths = [path for path, use in zip(files, uses, strict=True) if use.usage == "original"]
    tiled = [
        (ref, use, path)
        for ref, use, path in zip(refs, uses, files, strict=True)
        if use.usage == "contact_sheet"
    ]
    if tiled:
        first, last = tiled[0][0].index + 1, tiled[-1][0].index + 1
        path = files[0].parent / f"contact-sheet-references-{first}-to-{last}.jpg"
        path.write_bytes(contact_sheet(tiled))
        paths.append(path)
        for _, _, spilled in tiled:
            spilled.unlink()
    return ReferencePlan(tuple(paths), uses)


def write(refs: tuple[Reference, ...], directory: Path) -> ReferencePlan:
    """Originals byte for byte, then the sheet (if any), into `directory`."""
    return arrange(refs, spill(refs, directory))


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except (AttributeError, OSError):  # Pillow without FreeType: the small bitmap font
        return ImageFont.load_default()


def contact_sheet(tiled: list[tuple[Reference, ReferenceUse, Path]]) -> bytes:
    """A grid of labelled tiles, as JPEG bytes."""
    n = len(tiled)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    tile = min(
        TILE_MAX_EDGE,
        (SHEET_MAX_EDGE - _GAP * (cols + 1)) // cols,
        (SHEET_MAX_EDGE - _GAP * (rows + 1)) // rows - _CAPTION,
    )
    sheet = Image.new(
        "RGB",
        (cols * tile + _GAP * (cols + 1), rows * (tile + _CAPTION) + _GAP * (rows + 1)),
        _BACKGROUND,
    )
    draw = ImageDraw.Draw(sheet)
    font = _font(28)
    for k, (ref, _use, path) in enumerate(tiled):
        col, row = k % cols, k // cols
        x = _GAP + col * (tile + _GAP)
        y = _GAP + row * (tile + _CAPTION + _GAP)
        # Tiles decode under the same budget as validation's decodes: sixteen
        # large references must not decode all at once outside it.
        with imaging.DECODE_BUDGET.hold(imaging.decode_cost(ref)), Image.open(path) as opened:
            opened.draft("RGB", (tile, tile))  # JPEG: decode at a reduced scale, much cheaper
            img = ImageOps.exif_transpose(opened)
            if img.mode in ("RGBA", "LA", "P"):
                img = img.convert("RGBA")
                flat = Image.new("RGB", img.size, (255, 255, 255))
                flat.paste(img, mask=img.getchannel("A"))
                img = flat
            else:
                img = img.convert("RGB")
            if max(img.size) > tile:
                img.thumbnail((tile, tile), Image.Resampling.LANCZOS)
            sheet.paste(img, (x + (tile - img.width) // 2, y + _CAPTION + (tile - img.height) // 2))
        caption = f"#{ref.index + 1}" + (f"  {ref.label}" if ref.label else "")
        draw.text((x + 4, y + 6), caption[:60], fill=(20, 20, 20), font=font)
    out = io.BytesIO()
    sheet.save(out, format="JPEG", quality=92, subsampling=0)
    return out.getvalue()
