"""A Generate request's reference bytes taken out of its wire bytes without a
copy (grpc_api/wire.py). The walk must agree with the protobuf parser on
every request it takes, and leave everything it does not expect to it."""

from __future__ import annotations

import io

import grpc
import pytest
from codex_image_server.dataplane import convert
from codex_image_server.errors import ServiceError
from codex_image_server.grpc_api import wire
from codex_image_server.grpc_api.servicer import parsed
from codex_image_server.request import imaging
from codeximage.v1 import image_service_pb2 as pb
from hypothesis import given, settings, strategies as st
from PIL import Image

from tests.support.grpc_helpers import error_details

texts = st.text(max_size=20)
ints = st.integers(min_value=-(2**31), max_value=2**31 - 1)
references = st.builds(
    pb.Reference,
    image=st.binary(max_size=300),
    mime_type=texts,
    label=texts,
    source=texts,
    width=ints,
    height=ints,
)
requests = st.builds(
    pb.GenerateRequest,
    prompt=texts,
    count=ints,
    size=texts,
    aspect=texts,
    quality=texts,
    request_id=texts,
    references=st.lists(references, max_size=6),
    fit=texts,
    background=texts,
)


def _both(raw: bytes) -> tuple[pb.GenerateRequest, pb.GenerateRequest]:
    """(what the plain parse gives, what the split gives with its images put back)."""
    plain = pb.GenerateRequest.FromString(raw)
    rest, images = wire.split_references(raw)
    split = pb.GenerateRequest.FromString(rest)
    assert len(images) == len(split.references)
    for ref, image in zip(split.references, images, strict=True):
        assert ref.image == b""
        assert isinstance(image, memoryview) and image.obj is raw  # a view, not a copy
        ref.image = bytes(image)
    return plain, split


@settings(max_examples=300, deadline=None)
@given(requests)
def test_the_split_agrees_with_the_parser(request):
    plain, split = _both(request.SerializeToString())
    assert split == plain


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            requests, st.builds(pb.GenerateRequest, references=st.lists(references, max_size=2))
        ),
        min_size=2,
        max_size=4,
    ),
    st.lists(st.binary(min_size=1, max_size=40), min_size=2, max_size=3),
)
def test_repeated_fields_and_merged_messages_as_the_parser_reads_them(parts, images):
    """Concatenated messages merge: scalars and `image` take their last value,
    `references` add up; a reference may itself arrive in pieces."""
    raw = b"".join(p.SerializeToString() for p in parts)
    pieces = b"".join(
        pb.Reference(image=i, label=f"piece {n}").SerializeToString() for n, i in enumerate(images)
    )
    raw += (
        bytes([(7 << 3) | 2]) + wire._encode_varint(len(pieces)) + pieces
    )  # one reference, several images
    plain, split = _both(raw)
    assert split == plain
    assert plain.references[-1].image == images[-1]


def test_unknown_fields_are_kept():
    unknown = bytes([(900 << 3 | 2) & 0x7F | 0x80, (900 << 3 | 2) >> 7, 3]) + b"abc"
    raw = (
        pb.GenerateRequest(prompt="p", references=[pb.Reference(image=b"img")]).SerializeToString()
        + unknown
    )
    plain, split = _both(raw)
    assert split == plain and split.SerializeToString().endswith(unknown)


@pytest.mark.parametrize(
    "raw",
    [
        pb.GenerateRequest(prompt="cut short").SerializeToString()[:-2],  # a length past the end
        bytes([(3 << 3) | 3, 0]),  # a group: left to the parser
        bytes([0x0A]) + bytes([0xFF] * 11),  # a varint longer than 64 bits
        bytes([(1 << 3) | 0, 1]) * 300,  # more top-level fields than a real request has
        bytes([(7 << 3) | 2, 80]) + bytes([(3 << 3) | 2, 0]) * 40,  # a reference of 40 fields
    ],
)
def test_what_the_walk_does_not_expect_goes_to_the_parser(raw):
    assert wire.split_references(raw) is None
    try:
        expected = pb.GenerateRequest.FromString(raw)
    except Exception:  # noqa: BLE001 - whatever the parser says, parsed() must say the same
        with pytest.raises(ServiceError) as exc:
            parsed(raw, "Generate")
        assert exc.value.reason == "INVALID_REQUEST_BYTES"
    else:
        assert parsed(raw, "Generate") == expected


def test_parsed_generate_carries_views_into_params():
    raw = pb.GenerateRequest(
        prompt="p", references=[pb.Reference(image=b"one", label="a"), pb.Reference(image=b"two")]
    ).SerializeToString()
    request = parsed(wire.Received(raw), "Generate")
    assert isinstance(request, convert.WithImages)
    params = convert.params(request)
    assert [bytes(r.image) for r in params.references] == [b"one", b"two"]
    assert [r.label for r in params.references] == ["a", ""]
    assert all(r.image.obj is raw for r in params.references)


def _encoded(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA" if fmt in ("PNG", "WEBP") else "RGB", (37, 23), (10, 200, 30)).save(
        out, format=fmt
    )
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_a_view_is_read_as_its_bytes_are(fmt):
    data = _encoded(fmt)
    view = memoryview(b"junk before" + data + b"junk after")[11 : 11 + len(data)]
    assert imaging.identify(view, 10_000) == imaging.identify(data, 10_000)
    imaging.check_decodes(view)
    with pytest.raises(imaging.BadImage):
        imaging.check_decodes(view[: len(view) // 2])


def test_a_bad_reference_still_gets_its_field_error(stub):
    """A reference that is not an image, sent the plain gRPC way, gets the
    field error it always got: the shortcut changes nothing a caller sees."""
    with pytest.raises(grpc.RpcError) as exc:
        list(
            stub.Generate(
                pb.GenerateRequest(prompt="x", references=[pb.Reference(image=b"not an image")])
            )
        )
    info, bad = error_details(exc.value)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _, _ in bad] == ["references[0].image"]
