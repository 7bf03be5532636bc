"""The attacks of one key on the store: a member reading, fetching, deleting
and listing another's images; a 200,000-character filter (it once held the
index lock for 10 s and 6 GB); forged page tokens. Each must be refused the
documented way (NOT_FOUND / 404, INVALID_ARGUMENT / 400, in time); anything
else is a breach."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import grpc
from codeximage.v1 import image_service_pb2 as pb

from tests.shim.client import request
from tests.support.generating import generate
from tests.support.server_proc import REPO, start_server

from .figures import Figures, read_log, settle

LONG_FILTER = "ab" * 100_000  # 200,000 characters
FILTER_BUDGET_S = 1.0


def _add_key(keys_file: Path, name: str) -> str:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "codex_image_server",
            "keys",
            "add",
            name,
            "--keys-file",
            str(keys_file),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=True,
    ).stdout.strip()


def _breach(out: Figures, what: str) -> None:
    out.breaches += 1
    out._example(f"breach: {what}")


def _refused(out: Figures, call, want: grpc.StatusCode, what: str) -> None:
    out.requests += 1
    try:
        result = call()
        if hasattr(result, "__next__"):
            list(result)
    except grpc.RpcError as err:
        out.grpc_answer(err.code().name, err.details() or "", what)
        if err.code() != want:
            _breach(out, f"{what}: {err.code().name}")
        return
    _breach(out, f"{what}: answered")


def _http_refused(
    out: Figures, srv, method: str, path: str, key: str, want: int, what: str
) -> None:
    reply = request(srv.http_base, method, path, headers={"Authorization": f"Bearer {key}"})
    out.answer(reply.status, reply.body, what)
    if reply.status != want:
        _breach(out, f"{what}: HTTP {reply.status}")


def _forged_tokens(real: str) -> list[str]:
    raw = base64.urlsafe_b64decode(real + "=" * (-len(real) % 4))
    fields = json.loads(raw[16:])
    unsigned = (
        base64.urlsafe_b64encode(json.dumps({**fields, "t": 10**30}).encode()).decode().rstrip("=")
    )
    flipped = bytearray(raw)
    flipped[-2] ^= 1
    return [
        unsigned,
        base64.urlsafe_b64encode(bytes(flipped)).decode().rstrip("="),
        "!!",
        "A" * 5000,
    ]


def tenant_attacks(tmp: Path, out: Figures) -> None:
    keys_file = tmp / "keys.json"
    tmp.mkdir(parents=True, exist_ok=True)
    alice, bob = _add_key(keys_file, "alice"), _add_key(keys_file, "bob")
    with start_server(tmp / "server", http=True, args=["--keys-file", str(keys_file)]) as srv:
        stub, a, b = (
            srv.stub(),
            [("authorization", f"Bearer {alice}")],
            [("authorization", f"Bearer {bob}")],
        )
        theirs = []
        for i in range(3):
            images, _ = generate(stub, f"alice's picture {i}", metadata=a)
            theirs += [image.id for image in images]
            generate(stub, f"bob's picture {i}", metadata=b)
        for image_id in theirs:
            _refused(
                out,
                lambda image_id=image_id: stub.GetImage(
                    pb.GetImageRequest(image_id=image_id), metadata=b, timeout=30
                ),
                grpc.StatusCode.NOT_FOUND,
                "bob GetImage alice's",
            )
            _refused(
                out,
                lambda image_id=image_id: stub.GetImageFile(
                    pb.GetImageFileRequest(image_id=image_id), metadata=b, timeout=30
                ),
                grpc.StatusCode.NOT_FOUND,
                "bob GetImageFile alice's",
            )
            _refused(
                out,
                lambda image_id=image_id: stub.DeleteImage(
                    pb.DeleteImageRequest(image_id=image_id), metadata=b, timeout=30
                ),
                grpc.StatusCode.NOT_FOUND,
                "bob DeleteImage alice's",
            )
            for method, path in (
                ("GET", f"/v1/images/{image_id}"),
                ("GET", f"/v1/images/{image_id}/file"),
                ("DELETE", f"/v1/images/{image_id}"),
            ):
                _http_refused(out, srv, method, path, bob, 404, f"bob {method} {path}")
        for key_name in ("", "alice"):
            listed = {
                i.id
                for i in stub.ListImages(
                    pb.ListImagesRequest(page_size=1000, key_name=key_name), metadata=b, timeout=30
                ).images
            }
            out.requests += 1
            if listed & set(theirs):
                _breach(out, f"bob listed alice's images (key_name={key_name!r})")
        still = {
            i.id for i in stub.ListImages(pb.ListImagesRequest(page_size=1000), metadata=a).images
        }
        if set(theirs) - still:
            _breach(out, "alice's images were deleted by bob")
        for rpc, message in (
            (stub.ListImages, pb.ListImagesRequest),
            (stub.ListRequests, pb.ListRequestsRequest),
        ):
            started = time.monotonic()
            _refused(
                out,
                lambda rpc=rpc, message=message: rpc(
                    message(prompt_contains=LONG_FILTER), metadata=b, timeout=30
                ),
                grpc.StatusCode.INVALID_ARGUMENT,
                "200,000-char filter",
            )
            if time.monotonic() - started > FILTER_BUDGET_S:
                _breach(out, f"200,000-char filter took {time.monotonic() - started:.2f} s")
        _http_refused(
            out,
            srv,
            "GET",
            f"/v1/images?prompt_contains={'x' * 5000}",
            bob,
            400,
            "5,000-char filter",
        )
        reply = request(
            srv.http_base,
            "GET",
            f"/v1/requests?prompt_contains={LONG_FILTER}",
            headers={"Authorization": f"Bearer {bob}"},
        )
        out.answer(reply.status, reply.body, "200,000-char filter over HTTP")
        if not 400 <= reply.status < 500:
            _breach(out, f"200,000-char filter over HTTP: {reply.status}")
        real = stub.ListImages(pb.ListImagesRequest(page_size=1), metadata=a).next_page_token
        for token in _forged_tokens(real):
            _refused(
                out,
                lambda token=token: stub.ListImages(
                    pb.ListImagesRequest(page_size=1, page_token=token), metadata=a, timeout=30
                ),
                grpc.StatusCode.INVALID_ARGUMENT,
                "forged page token",
            )
            _http_refused(
                out,
                srv,
                "GET",
                f"/v1/images?page_size=1&page_token={urllib.parse.quote(token)}",
                alice,
                400,
                "forged page token over HTTP",
            )
        bobs_try = pb.ListImagesRequest(page_size=1, page_token=real)
        _refused(
            out,
            lambda: stub.ListImages(bobs_try, metadata=b, timeout=30),
            grpc.StatusCode.INVALID_ARGUMENT,
            "alice's token used by bob",
        )
        settle(srv, out)
    read_log(srv.log_text(), out)
    for key in (alice, bob):
        if key in srv.log_text():
            _breach(out, "a key appeared in the log")
