"""background: transparent through real gRPC with the fake codex: the tool's
own alpha, the keyed-matte fallback, refusal, and the fields around it."""

from __future__ import annotations

import io

import grpc
import numpy as np
import pytest
from codeximage.v1 import image_service_pb2 as pb
from PIL import Image

from tests.support.grpc_helpers import error_details


def generate(stub, **fields):
    responses = list(stub.Generate(pb.GenerateRequest(**fields), timeout=60))
    return [r.image for r in responses if r.WhichOneof("event") == "image"], responses[-1].summary


def pixels(server, img):
    with Image.open(io.BytesIO(server_file(server, img))) as im:
        return im.format, im.mode, np.asarray(im.convert("RGBA"))


def server_file(server, img):
    ext = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}[img.mime_type]
    return (server.output_dir / f"{img.id}.{ext}").read_bytes()


def test_the_image_models_own_alpha_is_checked_and_kept(stub, server):
    (img,), summary = generate(
        stub, prompt="a red fox [[fake size=320x192]]", background="transparent"
    )
    fmt, mode, rgba = pixels(server, img)
    assert (fmt, mode, img.mime_type) == ("PNG", "RGBA", "image/png")
    assert img.background == "transparent" and summary.background == "transparent"
    assert img.alpha_source == pb.ALPHA_SOURCE_IMAGE_MODEL
    t = img.transparency
    assert (t.alpha_min, t.alpha_max) == (0, 255) and t.key_color == "#00ff00"
    assert t.transparent_share == pytest.approx(float((rgba[..., 3] <= 8).mean()), abs=1e-6)
    assert 0.5 < t.transparent_share < 0.9 and t.edge_residue == 0


def test_an_opaque_answer_is_keyed_locally(stub, server):
    (img,), _ = generate(
        stub, prompt="a red fox [[fake size=320x192 alpha=key]]", background="transparent"
    )
    _, mode, rgba = pixels(server, img)
    assert mode == "RGBA" and img.alpha_source == pb.ALPHA_SOURCE_KEYED_MATTE
    # The fake draws the subject in the middle half: exactly that stays visible.
    visible = rgba[..., 3] > 8
    assert visible[48:144, 80:240].all() and not visible[:48].any() and not visible[:, :80].any()
    assert img.transparency.transparent_share == pytest.approx(0.75, abs=0.01)


def test_a_green_subject_gets_a_magenta_key(stub, server):
    (img,), _ = generate(
        stub, prompt="a green frog [[fake size=256x256 alpha=key]]", background="transparent"
    )
    assert (
        img.transparency.key_color == "#ff00ff" and img.alpha_source == pb.ALPHA_SOURCE_KEYED_MATTE
    )


def test_webp_keeps_the_alpha(stub, server):
    (img,), _ = generate(
        stub, prompt="x [[fake size=256x256]]", background="transparent", output_format="webp"
    )
    fmt, mode, rgba = pixels(server, img)
    assert fmt == "WEBP" and img.mime_type == "image/webp" and (rgba[..., 3] == 0).mean() > 0.5


def test_a_result_that_cannot_be_made_transparent_is_refused(stub, server):
    with pytest.raises(grpc.RpcError) as err:
        generate(stub, prompt="x [[fake size=256x256 alpha=opaque]]", background="transparent")
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info, _ = error_details(err.value)
    assert info.reason == "TRANSPARENCY_FAILED" and "cannot be keyed" in err.value.details()


def test_jpeg_with_transparent_names_both_fields(stub):
    with pytest.raises(grpc.RpcError) as err:
        generate(stub, prompt="x", background="transparent", output_format="jpeg")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    _, violations = error_details(err.value)
    assert [(f, r) for f, r, _ in violations] == [
        ("background", "TRANSPARENT_NEEDS_ALPHA_FORMAT"),
        ("output_format", "TRANSPARENT_NEEDS_ALPHA_FORMAT"),
    ]


def test_bad_background_and_compression_are_named(stub):
    with pytest.raises(grpc.RpcError) as err:
        generate(stub, prompt="x", background="glass", output_compression=101)
    _, violations = error_details(err.value)
    assert {(f, r) for f, r, _ in violations} == {
        ("background", "INVALID_BACKGROUND"),
        ("output_compression", "INVALID_OUTPUT_COMPRESSION"),
    }


def test_opaque_flattens_an_alpha_answer(stub, server):
    (img,), _ = generate(
        stub,
        prompt="x [[fake size=256x256 alpha=real]] transparent_background: true",
        background="opaque",
    )
    _, mode, rgba = pixels(server, img)
    assert (
        mode == "RGB"
        and img.alpha_source == pb.ALPHA_SOURCE_UNSPECIFIED
        and not img.HasField("transparency")
    )


def test_output_compression_sets_the_encoder_quality(stub, server):
    sizes = {}
    for q in (10, 95):
        (img,), _ = generate(
            stub,
            prompt="x [[fake size=256x256 noise=1]]",
            output_format="jpeg",
            output_compression=q,
        )
        sizes[q] = img.byte_size
    assert sizes[10] * 3 < sizes[95]


def test_capabilities_list_the_backgrounds(stub):
    caps = stub.GetCapabilities(pb.GetCapabilitiesRequest(), timeout=10)
    assert list(caps.backgrounds) == ["auto", "opaque", "transparent"]
