"""What the plugin sends beyond the matrix: refusals naming the field, the
resize path with real bytes, `fit`, capabilities, references past five."""

from __future__ import annotations

import base64
import hashlib
import io
import json

import grpc
import pytest
from codeximage.v1 import image_service_pb2 as pb
from PIL import Image, ImageChops

from tests.shim.client import request
from tests.support.fake_codex import png_bytes
from tests.support.grpc_helpers import error_details

from .matrix import REFERENCES, Row

GENERATE = "/v1/images/generate"


def _post(server, body):
    return request(server.http_base, "POST", GENERATE, body, timeout=120)


def _refused(reply, code: str, field: str):
    assert reply.status == 400, reply.body[:300]
    body = reply.json()
    assert body["error"]["code"] == code, body
    fields = [v["field"] for d in body["status"]["details"] for v in d.get("field_violations", [])]
    assert field in fields, body
    return body


@pytest.mark.parametrize(
    "canvas,field",
    [
        ({"width": 0, "height": 3508}, "canvas_size.width"),
        ({"width": 2480, "height": -1}, "canvas_size.height"),
        ({"width": 2480.5, "height": 3508}, "canvas_size.width"),
        ({"width": "wide", "height": 3508}, "canvas_size.width"),
        ([2480, 3508], "canvas_size"),
    ],
)
def test_bad_canvas_size_names_the_field(plugin_server, canvas, field):
    reply = _post(
        plugin_server, {"prompt": "x", "size": "2k", "aspect": "画布比例", "canvas_size": canvas}
    )
    _refused(reply, "invalid_canvas_size", field)


def test_custom_aspect_without_an_explicit_size(plugin_server):
    body = _refused(
        _post(plugin_server, {"prompt": "x", "size": "2k", "aspect": "自定义"}),
        "invalid_size",
        "size",
    )
    assert "explicit size" in body["error"]["message"]


def test_declared_size_that_disagrees_with_the_bytes(plugin_server):
    data, _, _ = REFERENCES[0]  # 60x40 bytes
    ref = {
        "image": "data:image/png;base64," + base64.b64encode(data).decode(),
        "width": 1000,
        "height": 1000,
    }
    body = _refused(
        _post(
            plugin_server,
            {"prompt": "x", "size": "1k", "aspect": "参考图比例", "references": [ref]},
        ),
        "reference_size_mismatch",
        "references[0].width",
    )
    assert "60x40" in body["error"]["message"] and "1000x1000" in body["error"]["message"]


def test_a_smaller_copy_of_the_declared_size_is_fine(plugin_server):
    # 60x40 bytes for a declared 3000x2000 layer: the same shape, so accepted,
    # and the declared size (what the plugin computed from) sets the ratio.
    row = Row("参考图比例", "2k", 1, 1)
    reply = _post(plugin_server, row.plugin_body())
    assert reply.status == 200 and reply.json()["resolved_size"] == "2016x1344"
    assert reply.json()["aspect_source"] == "reference"


def test_canvas_aspect_without_canvas_size_uses_the_first_reference(plugin_server):
    body = Row("画布比例", "1k", 1, 1).plugin_body()
    del body["canvas_size"]
    reply = _post(plugin_server, body)
    assert reply.status == 200 and reply.json()["resolved_size"] == "1008x672"  # the 3:2 reference
    body["references"] = []
    reply = _post(plugin_server, body)
    assert reply.status == 200 and reply.json()["resolved_size"] == "1104x624"  # 16:9
    assert reply.json()["aspect_source"] == "fallback"


def test_invalid_fit(plugin_server):
    _refused(
        _post(plugin_server, {"prompt": "x", "size": "2k", "fit": "stretch"}), "invalid_fit", "fit"
    )


def test_bad_input_through_grpc_names_the_fields(plugin_stub):
    with pytest.raises(grpc.RpcError) as exc:
        list(
            plugin_stub.Generate(
                pb.GenerateRequest(
                    prompt="x",
                    size="2k",
                    aspect="custom",
                    canvas_size=pb.CanvasSize(width=0, height=5),
                    references=[pb.Reference(image=REFERENCES[0][0])] * 17,
                ),
                timeout=30,
            )
        )
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    _, violations = error_details(exc.value)
    assert {"size", "canvas_size.width", "references"} <= {f for f, _, _ in violations}


def _pixels(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB")


def _max_difference(a: Image.Image, b: Image.Image) -> int:
    return max(high for _, high in ImageChops.difference(a, b).getextrema())


@pytest.mark.parametrize(
    "native,target,enlarged",
    [
        ("1536x1024", "2k 16:9", True),  # the model's 3:2 made 16:9 and larger
        ("1024x1024", "4k 9:16", True),
        ("3000x2000", "1k 4:3", False),  # a larger model image is only shrunk
    ],
)
def test_resize_matches_pillow_crop_and_lanczos(plugin_stub, native, target, enlarged):
    """The fake draws a deterministic pattern: `fit: native` returns its bytes,
    the default returns the service's resize; the same crop + Lanczos done
    here with Pillow differs by nothing but rounding."""
    preset, aspect = target.split()
    prompt = f"a pattern [[fake size={native} pattern=1]]"
    [native_image] = _images(plugin_stub, prompt=prompt, size=preset, aspect=aspect, fit="native")
    [exact_image] = _images(plugin_stub, prompt=prompt, size=preset, aspect=aspect)
    assert f"{native_image.width}x{native_image.height}" == native and not native_image.resized
    nw, nh = (int(v) for v in native.split("x"))
    assert native_image.fit == "native" and native_image.target_size == exact_image.resolved_size
    assert (exact_image.native_width, exact_image.native_height) == (nw, nh)
    assert exact_image.resized and exact_image.enlarged is enlarged and exact_image.fit == "exact"
    native_bytes = _file(plugin_stub, native_image.id)
    assert native_bytes == png_bytes(nw, nh, 1, pattern=True)  # untouched
    tw, th = exact_image.width, exact_image.height
    # Independently: the centred box of the target's aspect, then Lanczos.
    if nw * th > nh * tw:
        cw, ch = round(nh * tw / th), nh
    else:
        cw, ch = nw, round(nw * th / tw)
    left, top = (nw - cw) // 2, (nh - ch) // 2
    expected = (
        _pixels(native_bytes).crop((left, top, left + cw, top + ch)).resize((tw, th), Image.LANCZOS)
    )
    got = _pixels(_file(plugin_stub, exact_image.id))
    assert got.size == (tw, th)
    assert _max_difference(got, expected) <= 1


def test_model_image_already_the_right_size_is_untouched(plugin_stub):
    [image] = _images(
        plugin_stub, prompt="[[fake size=1024x1024 pattern=1]]", size="1k", aspect="1:1"
    )
    assert not image.resized and not image.enlarged
    assert _file(plugin_stub, image.id) == png_bytes(1024, 1024, 1, pattern=True)


def test_sixteen_references_first_four_byte_identical_rest_on_a_sheet(plugin_server):
    reply = _post(plugin_server, Row("参考图比例", "1k", 16, 2).plugin_body())
    assert reply.status == 200, reply.body[:300]
    uses = reply.json()["references"]
    assert [u["usage"] for u in uses] == ["original"] * 4 + ["contact_sheet"] * 12
    assert [u["tile"] for u in uses[4:]] == list(range(1, 13)) and {
        u["path_position"] for u in uses[4:]
    } == {5}
    assert reply.json()["data"][0]["references"] == uses  # in each image's metadata too
    request_id = reply.json()["id"]
    runs = [json.loads(p.read_text()) for p in plugin_server.piddir.glob("*.json")]
    runs = [r for r in runs if f"/{request_id}-" in r["cwd"]]
    assert len(runs) == 2
    for run in runs:
        images = run["images"]
        assert len(images) == 5, "codex's tool takes five paths"
        assert [i["sha256"] for i in images[:4]] == [
            hashlib.sha256(d).hexdigest() for d, _, _ in REFERENCES[:4]
        ]
        assert images[4]["path"].endswith("contact-sheet-references-5-to-16.jpg")


def test_capabilities_list_the_plugin_aspects(plugin_server):
    caps = request(plugin_server.http_base, "GET", "/v1/capabilities").json()
    assert caps["references"]["max_images"] == 16 and caps["references"]["mode"] == "original_image"
    names = {o["name"]: o for o in caps["aspect_options"]}
    assert {"16:9", "21:9", "landscape", "reference", "canvas", "custom"} <= set(names)
    assert {"参考图比例", "原图比例", "自动"} <= set(names["reference"]["aliases"])
    assert "画布比例" in names["canvas"]["aliases"] and "自定义" in names["custom"]["aliases"]
    assert caps["fits"] == ["exact", "native"]


def _images(stub, **fields):
    responses = list(stub.Generate(pb.GenerateRequest(**fields), timeout=60))
    return [r.image for r in responses if r.WhichOneof("event") == "image"]


def _file(stub, image_id: str) -> bytes:
    return b"".join(
        c.data for c in stub.GetImageFile(pb.GetImageFileRequest(image_id=image_id), timeout=60)
    )
