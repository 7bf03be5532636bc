"""Generations, edits and models through the official openai Python SDK
(pinned in pyproject.toml), over HTTP to a real server with the fake codex,
served in-process (tests/support/inprocess_server.py). A call the SDK gives
up on is cancelled: that test needs a server process (test_js_sdk.py)."""

from __future__ import annotations

import base64
import io

import openai
import pytest
from PIL import Image

from tests.openai_sdk.conftest import KEY
from tests.shim.client import request
from tests.support.grpc_helpers import png

IN_PROCESS = True  # the module's server: see conftest.py


def decode(b64: str) -> Image.Image:
    img = Image.open(io.BytesIO(base64.b64decode(b64)))
    img.load()
    return img


@pytest.mark.parametrize("n", [1, 2, 4])
def test_generate_b64_json(client, n):
    result = client.images.generate(
        model="gpt-image-2", prompt="a red fox [[fake size=320x192]]", n=n
    )
    assert len(result.data) == n and result.created > 0
    shas = set()
    for item in result.data:
        img = decode(item.b64_json)
        assert img.format == "PNG" and img.size == (320, 192)
        assert item.revised_prompt and item.url is None
        shas.add(item.b64_json)
    assert len(shas) == n, "each candidate is its own image"
    assert (
        result.size == "320x192" and result.output_format == "png" and result.background == "opaque"
    )
    # Whether codex got to turn.completed before it was stopped (its image
    # final) is a race here; test_usage.py pins both cases down.
    assert result.usage is None or result.usage.input_tokens == 1200 * n


def test_generate_url_points_at_the_file_route(client, server):
    result = client.images.generate(prompt="x [[fake size=256x256]]", response_format="url")
    url = result.data[0].url
    assert url.startswith(server.http_base + "/v1/images/img_") and url.endswith("/file")
    assert result.data[0].b64_json is None
    got = request(server.http_base, "GET", url, headers={"Authorization": f"Bearer {KEY}"})
    assert got.status == 200 and got.header("content-type") == "image/png"
    assert Image.open(io.BytesIO(got.body)).size == (256, 256)


@pytest.mark.parametrize("fmt, pil", [("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")])
def test_output_formats(client, fmt, pil):
    result = client.images.generate(
        prompt="x [[fake size=256x256]]", output_format=fmt, output_compression=60
    )
    assert decode(result.data[0].b64_json).format == pil and result.output_format == fmt


def test_sizes_follow_our_rules(client):
    ok = client.images.generate(prompt="x", size="1536x1024", quality="high")
    # What codex's image tool asked the image model for, not what we asked.
    assert ok.data and ok.quality == "auto"
    with pytest.raises(openai.BadRequestError) as err:
        client.images.generate(prompt="x", size="256x256")
    assert err.value.status_code == 400 and err.value.param == "size"


def test_transparent_background(client):
    result = client.images.generate(
        prompt="a fox [[fake size=256x256 alpha=key]]", background="transparent"
    )
    img = decode(result.data[0].b64_json)
    assert img.mode == "RGBA" and img.getchannel("A").getextrema() == (0, 255)
    assert result.background == "transparent"
    extra = result.data[0].model_extra
    assert (
        extra["alpha_source"] == "keyed_matte" and extra["transparency"]["transparent_share"] > 0.5
    )


def test_jpeg_with_transparent_is_a_bad_request_naming_background(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.images.generate(prompt="x", background="transparent", output_format="jpeg")
    assert err.value.param == "background" and err.value.code == "transparent_needs_alpha_format"
    assert "output_format" in err.value.message


def test_edit_with_one_file(client, server):
    ref = png(64, 48, (10, 20, 200))
    result = client.images.edit(
        image=("ref.png", ref, "image/png"), prompt="make it night [[fake size=256x256]]"
    )
    assert decode(result.data[0].b64_json).size == (256, 256)


def test_edit_with_several_files_and_url(client):
    refs = [
        ("a.png", png(40, 40, (200, 0, 0)), "image/png"),
        ("b.png", png(40, 40, (0, 0, 200)), "image/png"),
        ("c.png", png(40, 40, (0, 200, 0)), "image/png"),
    ]
    result = client.images.edit(
        image=refs, prompt="combine [[fake size=256x256]]", n=2, response_format="url"
    )
    assert len(result.data) == 2 and all(d.url for d in result.data)


def test_edit_json_form_with_data_urls(server):
    ref = base64.b64encode(png(32, 32)).decode()
    reply = request(
        server.http_base,
        "POST",
        "/v1/images/edits",
        headers={"Authorization": f"Bearer {KEY}"},
        body={
            "prompt": "x [[fake size=256x256]]",
            "images": [{"image_url": f"data:image/png;base64,{ref}"}],
        },
    )
    assert reply.status == 200, reply.body
    assert reply.json()["data"][0]["b64_json"]


def test_moderation_and_user_are_accepted_and_said_to_be_ignored(client):
    raw = client.images.with_raw_response.generate(prompt="x", moderation="low", user="someone")
    assert raw.headers["x-codex-image-ignored"] == "moderation, user"
    assert raw.parse().data


@pytest.mark.parametrize(
    "model",
    [
        "gpt-image-2",
        "gpt-image-2.5-sunburst",
        "gpt-image-2.5-flare",
        "gpt-image-2.6-sunburst",
        "gpt-image-2.6-flare",
        "gpt-image-2.6-nova",
    ],
)
def test_2026_model_ids_are_accepted_and_the_answer_names_gpt_image_2(client, model):
    raw = client.images.with_raw_response.generate(model=model, prompt="x [[fake size=256x256]]")
    result = raw.parse()
    assert result.data and result.model_extra["model"] == "gpt-image-2"
    ignored = raw.headers.get("x-codex-image-ignored", "")
    assert ("model" in ignored.split(", ")) == (model != "gpt-image-2"), ignored


@pytest.mark.parametrize("quality", ["xhigh", "max", "high", "low", "auto"])
def test_2026_qualities_are_accepted_and_the_answer_says_codex_used_auto(client, quality):
    raw = client.images.with_raw_response.generate(
        prompt="x [[fake size=256x256]]", quality=quality
    )
    assert raw.parse().quality == "auto"
    ignored = raw.headers.get("x-codex-image-ignored", "")
    assert ("quality" in ignored.split(", ")) == (quality != "auto"), ignored


@pytest.mark.parametrize("moderation", ["low", "auto"])
def test_moderation_values_are_accepted(client, moderation):
    raw = client.images.with_raw_response.generate(
        prompt="x [[fake size=256x256]]", moderation=moderation
    )
    assert raw.parse().data and raw.headers["x-codex-image-ignored"] == "moderation"


@pytest.mark.parametrize("compression", [0, 100])
def test_output_compression_bounds_are_accepted(client, compression):
    result = client.images.generate(
        prompt="x [[fake size=256x256]]", output_format="jpeg", output_compression=compression
    )
    assert decode(result.data[0].b64_json).format == "JPEG"


@pytest.mark.parametrize(
    "kwargs, param, code",
    [
        ({"moderation": "high"}, "moderation", "invalid_value"),
        ({"output_format": "gif"}, "output_format", "unsupported_output_format"),
        ({"output_format": "svg"}, "output_format", "unsupported_output_format"),
        ({"output_compression": -1}, "output_compression", None),
        ({"model": "gpt-image-2.7-flare"}, "model", "model_not_found"),
    ],
)
def test_2026_values_codex_cannot_honour_are_bad_requests_naming_the_field(
    client, kwargs, param, code
):
    with pytest.raises(openai.BadRequestError) as err:
        client.images.generate(**{"prompt": "x", **kwargs})
    assert err.value.status_code == 400 and err.value.param == param, err.value.body
    assert code is None or err.value.code == code


def test_a_safety_refusal_is_openai_moderation_blocked(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.images.generate(prompt="x [[fake mode=moderation]]")
    assert err.value.status_code == 400 and err.value.code == "moderation_blocked"
    assert err.value.body["type"] == "image_generation_user_error"
    assert "safety system" in err.value.message


def test_models(client):
    ids = [m.id for m in client.models.list()]
    assert {"gpt-image-2", "gpt-image-2.5-sunburst", "gpt-image-2.6-flare"} <= set(ids)
    assert client.models.retrieve("gpt-image-2.6-sunburst").id == "gpt-image-2.6-sunburst"
    assert client.models.retrieve("gpt-image-2").id == "gpt-image-2"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("dall-e-3")


def test_streaming_gives_one_completed_event_per_image(client):
    stream = client.images.generate(prompt="x [[fake size=256x256]]", n=2, stream=True)
    events = list(stream)
    assert [e.type for e in events] == ["image_generation.completed"] * 2
    assert all(decode(e.b64_json).size == (256, 256) for e in events)


# -- every error class is the SDK's own ---------------------------------------


def test_wrong_key_is_authentication_error(server):
    with openai.OpenAI(base_url=server.http_base + "/v1", api_key="wrong", max_retries=0) as c:
        with pytest.raises(openai.AuthenticationError) as err:
            c.images.generate(prompt="x")
    assert err.value.status_code == 401 and err.value.body["type"] == "authentication_error"


def test_bad_fields_are_bad_request_with_param(client):
    for kwargs, param in (
        ({"n": 9}, "n"),
        ({"quality": "ultra"}, "quality"),
        ({"prompt": " "}, "prompt"),
        ({"model": "dall-e-2"}, "model"),
        ({"output_compression": 101}, "output_compression"),
    ):
        with pytest.raises(openai.BadRequestError) as err:
            client.images.generate(**{"prompt": "x", **kwargs})
        assert err.value.param == param, (kwargs, err.value.body)


def test_mask_is_refused_clearly(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.images.edit(
            image=("a.png", png(32, 32), "image/png"),
            mask=("m.png", png(32, 32), "image/png"),
            prompt="x",
        )
    assert err.value.param == "mask" and err.value.code == "mask_not_supported"


def test_too_many_references_name_image(client, server):
    refs = [(f"{i}.png", png(16, 16), "image/png") for i in range(17)]  # over any reference limit
    with pytest.raises(openai.BadRequestError) as err:
        client.images.edit(image=refs, prompt="x")
    assert err.value.param == "image"


def test_codex_quota_is_rate_limit_error(client):
    with pytest.raises(openai.RateLimitError) as err:
        client.images.generate(prompt="x [[fake mode=quota]]")
    assert err.value.status_code == 429


def test_upstream_403_is_permission_denied(client):
    with pytest.raises(openai.PermissionDeniedError) as err:
        client.images.generate(prompt="x [[fake mode=forbidden]]")
    assert err.value.body["type"] == "permission_error"


@pytest.mark.parametrize("mode", ["fail", "noimage"])
def test_a_failed_codex_turn_is_a_server_error(client, mode):
    with pytest.raises(openai.InternalServerError) as err:
        client.images.generate(prompt=f"x [[fake mode={mode}]]")
    assert err.value.status_code >= 500 and err.value.body["type"] == "server_error"


def test_unknown_image_file_is_not_found(server):
    with openai.OpenAI(base_url=server.http_base + "/v1", api_key=KEY, max_retries=0) as c:
        with pytest.raises(openai.NotFoundError):
            c.get("/images/img_" + "0" * 32, cast_to=object)


def test_failed_transparency_is_bad_request(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.images.generate(
            prompt="x [[fake size=256x256 alpha=opaque]]", background="transparent"
        )
    assert err.value.code == "transparency_failed"


def test_edit_stream_gives_image_edit_completed(client):
    stream = client.images.edit(
        image=("a.png", png(32, 32), "image/png"), prompt="x [[fake size=256x256]]", stream=True
    )
    events = list(stream)
    assert [e.type for e in events] == ["image_edit.completed"] and decode(
        events[0].b64_json
    ).size == (256, 256)


def test_an_error_after_the_stream_started_is_raised_by_the_sdk(client):
    # The event stream is open (codex has started) when candidate 2 fails: the
    # failure comes as an SSE error event, which the SDK raises as APIError.
    with pytest.raises(openai.APIError) as err:
        for _ in client.images.generate(
            prompt="x [[fake size=64x64 fail_candidate=2 delay=2]]", n=2, stream=True
        ):
            pass
    assert (
        err.value.body["code"] == "codex_exec_failed" and err.value.body["type"] == "server_error"
    )
