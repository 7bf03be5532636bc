"""Hostile images (decompression bombs, truncated files, absurd headers) and
stalled readers (downloads nobody reads)."""

from __future__ import annotations

import base64
import io
import socket
import struct
import time
import zlib

import grpc
from codeximage.v1 import image_service_pb2 as pb
from PIL import Image

from tests.shim.client import request
from tests.support.grpc_helpers import png, png_claiming

from .figures import Figures


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def hostile_images() -> dict[str, bytes]:
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(jpeg, format="JPEG")
    jpeg = jpeg.getvalue()
    huge_ihdr = b"\x89PNG\r\n\x1a\n" + _chunk(
        b"IHDR", struct.pack(">IIBBBBB", 2**31 - 1, 2**31 - 1, 8, 6, 0, 0, 0)
    )
    return {
        "bomb-over-limit": png_claiming(9000, 9000),
        "bomb-under-limit": png_claiming(6000, 6000),
        "truncated-png": png(256, 256)[:-40],
        "truncated-jpeg": jpeg[: len(jpeg) // 2],
        "png-huge-header": huge_ihdr + _chunk(b"IEND", b""),
        "jpeg-huge-header": jpeg[:2]
        + b"\xff\xc0\x00\x11\x08\xff\xff\xff\xff\x03"
        + b"\x01\x22\x00" * 3
        + jpeg[2:],
        "gif-huge-screen": b"GIF89a\xff\xff\xff\xff\x00\x00\x00;",
        "junk": b"\x00" * 1000,
        "long-text-chunk": b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
        + _chunk(b"tEXt", b"k\x00" + b"v" * 2_000_000)
        + _chunk(b"IEND", b""),
    }


def send_hostile_images(srv, figures: Figures, rounds: int = 1) -> None:
    stub = srv.stub()
    for _ in range(rounds):
        for name, data in hostile_images().items():
            try:
                list(
                    stub.Generate(
                        pb.GenerateRequest(
                            prompt=f"x [[fake delay=0.05]] {name}",
                            references=[pb.Reference(image=data)],
                        ),
                        timeout=60,
                    )
                )
                figures.grpc_answer("OK", "", name)
            except grpc.RpcError as err:
                figures.grpc_answer(err.code().name, err.details() or "", name)
            if srv.http_port:
                url = "data:image/png;base64," + base64.b64encode(data).decode()
                reply = request(
                    srv.http_base,
                    "POST",
                    "/v1/images/generate",
                    body={"prompt": f"x {name}", "references": [{"image": url}]},
                )
                figures.answer(reply.status, reply.body, f"http {name}")


def stalled_readers(srv, figures: Figures, readers: int, idle_s: float) -> None:
    """Ask for a large image file and never read it, over HTTP and gRPC; the
    server must drop each after its idle timeout."""
    stub = srv.stub()
    image = [
        r
        for r in stub.Generate(
            pb.GenerateRequest(prompt="x [[fake size=1536x1536 noise=1]]"), timeout=60
        )
        if r.WhichOneof("event") == "image"
    ][0].image
    socks, calls = [], []
    for _ in range(readers):
        sock = socket.create_connection(("127.0.0.1", srv.http_port), timeout=30)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(f"GET /v1/images/{image.id}/file HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        socks.append(sock)
        call = stub.GetImageFile(pb.GetImageFileRequest(image_id=image.id), timeout=120)
        next(call)  # one chunk, then nobody reads
        calls.append(call)
        figures.requests += 2
    time.sleep(idle_s * 3)
    for call in calls:
        call.cancel()
    for sock in socks:
        sock.close()
