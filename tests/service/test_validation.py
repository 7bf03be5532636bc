"""Every validation rule, at its edge and just past it, through real gRPC.

Accepted cases run a (fast, fake) generation to completion; rejected ones
must be INVALID_ARGUMENT with a BadRequest naming the field and an ErrorInfo
reason, and must start no codex process at all. The servers are served
in-process (tests/support/inprocess_server.py): nothing here needs a process.
"""

from __future__ import annotations

import grpc
import pytest
from codeximage.v1 import image_service_pb2 as pb

from tests.support.grpc_helpers import error_details, jpeg, png, png_claiming
from tests.support.inprocess_server import serve_in_process

REF_BYTES_LIMIT = len(png(64, 64))
REF_PIXEL_LIMIT = 300 * 200


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Default limits and a short kill grace, as the directory's server."""
    with serve_in_process(tmp_path_factory.mktemp("srv"), args=["--kill-grace-ms", "500"]) as srv:
        yield srv


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    """A server with small reference limits, so the edges are cheap to hit."""
    with serve_in_process(
        tmp_path_factory.mktemp("limits"),
        args=["--max-reference-bytes", str(REF_BYTES_LIMIT), "--max-references", "4"],
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def pixel_limited(tmp_path_factory):
    with serve_in_process(
        tmp_path_factory.mktemp("pixels"), args=["--max-reference-pixels", str(REF_PIXEL_LIMIT)]
    ) as srv:
        yield srv


def generate(stub, **fields):
    return list(stub.Generate(pb.GenerateRequest(**fields), timeout=60))


def rejected(stub, **fields):
    with pytest.raises(grpc.RpcError) as exc:
        generate(stub, **fields)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT, exc.value.details()
    info, violations = error_details(exc.value)
    assert info is not None and info.domain == "codex-image-server"
    assert violations, "a BadRequest must name the bad fields"
    return info, violations


def accepted(stub, **fields):
    responses = generate(stub, **fields)
    assert responses[-1].WhichOneof("event") == "summary"
    return responses


OK = dict(prompt="a lighthouse at dusk")

# (fields, violated field, reason) just past each edge; the matching
# accepted case at the edge is in EDGES_OK below.
EDGES_BAD = [
    (dict(prompt="   "), "prompt", "MISSING_PROMPT"),
    (dict(OK, count=5), "count", "INVALID_COUNT"),
    (dict(OK, count=-1), "count", "INVALID_COUNT"),
    (dict(OK, size="3856x2160"), "size", "INVALID_SIZE"),  # longest edge 3840 + 16
    (dict(OK, size="1024x1032"), "size", "INVALID_SIZE"),  # not a multiple of 16
    (dict(OK, size="2416x800"), "size", "INVALID_SIZE"),  # ratio just over 3:1
    (dict(OK, size="1008x640"), "size", "INVALID_SIZE"),  # 645,120 < 655,360 pixels
    (dict(OK, size="2880x2896"), "size", "INVALID_SIZE"),  # 8,340,480 > 8,294,400 pixels
    (dict(OK, size="big"), "size", "INVALID_SIZE"),
    (dict(OK, size="8K"), "size", "INVALID_SIZE"),
    (dict(OK, size="2K", aspect="31:10"), "aspect", "INVALID_ASPECT"),
    (dict(OK, size="2K", aspect="wide"), "aspect", "INVALID_ASPECT"),
    (dict(OK, quality="ultra"), "quality", "INVALID_QUALITY"),
    (dict(OK, output_format="gif"), "output_format", "INVALID_OUTPUT_FORMAT"),
    (dict(OK, request_id="../etc"), "request_id", "INVALID_REQUEST_ID"),
    (dict(OK, request_id="x" * 65), "request_id", "INVALID_REQUEST_ID"),
]

EDGES_OK = [
    dict(OK, count=4),
    dict(OK, count=1),
    dict(OK, count=0),  # 0 means the default, 1
    dict(OK, size="3840x2160"),
    dict(OK, size="1024x1024"),
    dict(OK, size="2400x800"),
    dict(OK, size="1024x640"),
    dict(OK, size="2880x2880"),
    dict(OK, size="auto"),
    dict(OK, size="4K", aspect="3:1"),
    dict(OK, size="1k", aspect="portrait"),
    dict(OK, quality="low"),
    dict(OK, output_format="jpg"),
    dict(OK, request_id="x" * 64),
]


@pytest.mark.parametrize(
    "fields,field,reason", EDGES_BAD, ids=[f"{f}:{r}:{i}" for i, (_, f, r) in enumerate(EDGES_BAD)]
)
def test_rejected_past_the_edge(stub, server, fields, field, reason):
    before = len(server.fake_runs())
    info, violations = rejected(stub, **fields)
    assert (field, reason) in [(f, r) for f, r, _ in violations]
    assert info.reason == violations[0][1]
    assert len(server.fake_runs()) == before, "a rejected request must not start codex"


@pytest.mark.parametrize("fields", EDGES_OK, ids=[str(i) for i in range(len(EDGES_OK))])
def test_accepted_at_the_edge(stub, fields):
    accepted(stub, **fields)


def test_every_bad_field_is_named_at_once(stub):
    _, violations = rejected(
        stub,
        prompt="",
        count=9,
        size="100x100",
        quality="best",
        output_format="bmp",
        aspect="sideways",
    )
    fields = {f for f, _, _ in violations}
    assert {"prompt", "count", "size", "quality", "output_format", "aspect"} <= fields
    # Each size rule broken is its own violation, with its reason spelled out.
    size_rules = [d for f, _, d in violations if f == "size"]
    assert any("not a multiple of 16" in d for d in size_rules)
    assert any("below the minimum" in d for d in size_rules)


def test_size_reasons_name_the_rule(stub):
    _, violations = rejected(stub, prompt="x", size="4000x1200")
    descriptions = " | ".join(d for _, _, d in violations)
    assert "longest edge 4000 exceeds 3840" in descriptions
    assert "wider than 3:1" in descriptions


def test_references_without_prompt_are_enough(limited):
    stub = limited.stub()
    accepted(stub, prompt="", references=[pb.Reference(image=png(64, 64))])


def test_reference_count_edge(limited):
    stub = limited.stub()
    ref = pb.Reference(image=png(64, 64), mime_type="image/png")
    accepted(stub, prompt="x", references=[ref] * 4)
    _, violations = rejected(stub, prompt="x", references=[ref] * 5)
    assert violations[0][:2] == ("references", "TOO_MANY_REFERENCES")


def test_reference_byte_size_edge(limited):
    stub = limited.stub()
    at_limit = png(64, 64)
    assert len(at_limit) == REF_BYTES_LIMIT
    accepted(stub, prompt="x", references=[pb.Reference(image=at_limit)])
    # One byte more (trailing bytes after IEND still decode): too large.
    _, violations = rejected(stub, prompt="x", references=[pb.Reference(image=at_limit + b"\0")])
    assert violations[0][:2] == ("references[0].image", "REFERENCE_TOO_LARGE")


def test_reference_pixel_edge_and_decompression_bomb(pixel_limited):
    stub = pixel_limited.stub()
    accepted(stub, prompt="x", references=[pb.Reference(image=jpeg(300, 200))])
    _, violations = rejected(stub, prompt="x", references=[pb.Reference(image=jpeg(301, 200))])
    assert violations[0][:2] == ("references[0].image", "INVALID_REFERENCE")
    # 10000x10000 pixels in a few hundred bytes: refused from its header.
    bomb = png_claiming(10000, 10000)
    assert len(bomb) < 1024 * 1024
    _, violations = rejected(stub, prompt="x", references=[pb.Reference(image=bomb)])
    assert "decompression bomb" in violations[0][2]


@pytest.mark.parametrize(
    "data", [b"not an image at all", png(64, 64)[:40], b""], ids=["text", "truncated-png", "empty"]
)
def test_reference_that_does_not_decode(limited, data):
    _, violations = rejected(limited.stub(), prompt="x", references=[pb.Reference(image=data)])
    assert violations[0][:2] == ("references[0].image", "INVALID_REFERENCE")


def test_each_bad_reference_is_named(limited):
    good = pb.Reference(image=png(64, 64))
    _, violations = rejected(
        limited.stub(),
        prompt="x",
        references=[good, pb.Reference(image=b"junk"), good, pb.Reference(image=b"more junk")],
    )
    assert [f for f, _, _ in violations] == ["references[1].image", "references[3].image"]
