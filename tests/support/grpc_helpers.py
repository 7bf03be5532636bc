"""Small helpers for reading gRPC errors and images in tests."""

from __future__ import annotations

import io
import struct
import zlib

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from PIL import Image


def error_details(err: grpc.RpcError) -> tuple[error_details_pb2.ErrorInfo | None, list]:
    """(ErrorInfo, [(field, reason, description), ...]) of a failed call."""
    status = rpc_status.from_call(err)
    info, violations = None, []
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations = [(v.field, v.reason, v.description) for v in bad.field_violations]
    return info, violations


def png(width: int, height: int, color=(200, 40, 40), mode="RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), color).save(out, format="PNG")
    return out.getvalue()


def jpeg(width: int, height: int, color=(30, 90, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="JPEG", quality=90)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A small, valid grayscale PNG whose pixels are all zero: huge when decoded."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    raw = zlib.compress(b"\0" * ((width + 1) * height), 9)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def kinds(responses) -> list[str]:
    return [r.WhichOneof("event") for r in responses]
