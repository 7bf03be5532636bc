"""A reference as a tool names it -> its bytes, for a GenerateRequest.

Three spellings: a data URL, the id of a stored image, or a file path
(anything else; bare base64 is not guessed at). Paths follow the
transport's PathPolicy: over stdio any file the host's user can read;
over `/mcp` only files inside a directory the operator listed, so a
remote caller never reads the server's files. The
bytes go to the service untouched; its own checks (type, size, count) apply.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
import re
from pathlib import Path

from codeximage.v1 import image_service_pb2 as pb

from .. import dataurl
from .arguments import ArgumentError
from .backend import Backend, PathPolicy

_IMAGE_ID = re.compile(r"^img_[0-9a-f]{32}$")


def _inside(path: Path, roots: tuple[Path, ...]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def _allowed_path(value: str, where: str, policy: PathPolicy) -> Path:
    path = Path(value).expanduser()
    if policy.roots is None:
        return path
    if not policy.roots:
        raise ArgumentError(
            where,
            "is a file path, and this server reads no files for MCP callers",
            "send the image as a data URL (data:image/png;base64,...) or the id of a stored "
            f"image; {policy.how_to_allow}",
        )
    if not path.is_absolute():
        raise ArgumentError(
            where,
            "is a relative file path",
            "give the absolute path of a file inside " + ", ".join(str(r) for r in policy.roots),
        )
    real = Path(os.path.realpath(path))  # a symlink out of the directory is outside it
    if not _inside(real, policy.roots):
        raise ArgumentError(
            where,
            "is outside the directories this server reads references from",
            "use a file inside "
            + ", ".join(str(r) for r in policy.roots)
            + ", or send the image as a data URL or a stored image's id",
        )
    return real


def _read(path: Path, where: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ArgumentError(where, f"no such file: {path}", "check the path") from None
    except IsADirectoryError:
        raise ArgumentError(where, f"is a directory: {path}", "name an image file") from None
    except OSError as exc:
        raise ArgumentError(
            where, f"cannot be read: {exc.strerror}", "check the file's permissions"
        ) from None


async def resolve(
    values: list[str], field: str, backend: Backend
) -> tuple[list[pb.Reference], list[bytes]]:
    """(references without their bytes, the bytes) in the order given."""
    references, images = [], []
    for i, value in enumerate(values):
        where = f"{field}[{i}]"
        value = value.strip()
        if dataurl.is_data_url(value):
            try:
                data, mime = dataurl.decode(value, where)
            except dataurl.NotAnImage as exc:
                raise ArgumentError(
                    where,
                    str(exc).removeprefix(where + " "),
                    "send data:<mime>;base64,<the file's bytes in base64>",
                ) from None
            label = f"image {i + 1}"
        elif _IMAGE_ID.match(value):
            image = await backend.get_image(value)  # NOT_FOUND names the id
            data, mime, label = (
                await backend.image_bytes(image),
                image.mime_type,
                f"image {i + 1} ({value})",
            )
        else:
            path = _allowed_path(value, where, backend.policy)
            data = await asyncio.to_thread(_read, path, where)
            mime, label = mimetypes.guess_type(path.name)[0] or "", f"image {i + 1} ({path.name})"
        references.append(pb.Reference(mime_type=mime, label=label, source="mcp"))
        images.append(data)
    return references, images
