"""The official openai Python SDK against the server running the real codex
against the upstream stand-in: generations and edits, references reaching
the upstream byte-identical, and `background: transparent` reaching it as
codex sends it."""

from __future__ import annotations

import base64
import hashlib
import io

import openai
import pytest
from PIL import Image

from .test_generate import _encoded, _noisy

pytestmark = pytest.mark.realcodex


@pytest.fixture
def client(http_server):
    with openai.OpenAI(
        base_url=http_server.http_base + "/v1", api_key="unused", max_retries=0, timeout=180
    ) as c:
        yield c


def _bytes(item) -> bytes:
    return base64.b64decode(item.b64_json)


def test_generation_through_the_sdk(client, fresh):
    result = client.images.generate(model="gpt-image-2", prompt="a lighthouse at dusk", n=2)
    returned = {img["sha256"] for img in fresh.images_returned()}
    assert len(result.data) == 2 and len(returned) == 2
    for item in result.data:
        assert hashlib.sha256(_bytes(item)).hexdigest() in returned, (
            "bytes differ from what the upstream sent"
        )
    bodies = [r["body"] for r in fresh.records.all("images.generations")]
    assert all(b["background"] == "opaque" for b in bodies)


def test_edit_with_files_reaches_the_upstream_byte_identical(client, fresh):
    refs = [_encoded(_noisy(900, 600, seed=3), "PNG"), _encoded(_noisy(640, 480, seed=4), "JPEG")]
    files = [("a.png", refs[0], "image/png"), ("b.jpg", refs[1], "image/jpeg")]
    result = client.images.edit(
        image=files, prompt="merge these into one poster", response_format="url"
    )
    assert result.data[0].url
    received = fresh.references_received()
    assert [r["sha256"] for r in received] == [hashlib.sha256(r).hexdigest() for r in refs]


def test_transparent_background_reaches_the_upstream_and_comes_back_with_alpha(client, fresh):
    result = client.images.generate(prompt="a red balloon", background="transparent")
    (body,) = [r["body"] for r in fresh.records.all("images.generations")]
    assert body["background"] == "transparent", (
        "codex sends the tool's transparent_background as background"
    )
    calls = [r for r in fresh.records.all("responses") if r.get("call_id")]
    assert calls, "the model was asked to call the tool"
    with Image.open(io.BytesIO(_bytes(result.data[0]))) as img:
        assert img.mode == "RGBA" and img.getchannel("A").getextrema() == (0, 255)
    assert result.data[0].model_extra["alpha_source"] == "image_model"


def test_alpha_lost_upstream_is_keyed_locally(client, fresh):
    fresh.set(alpha_lost=True)
    result = client.images.generate(prompt="a red balloon", background="transparent")
    (body,) = [r["body"] for r in fresh.records.all("images.generations")]
    assert body["background"] == "transparent"
    (returned,) = fresh.images_returned()
    with Image.open(io.BytesIO(returned["bytes"])) as upstream:
        assert upstream.mode == "RGB", "the upstream really answered without alpha"
    extra = result.data[0].model_extra
    assert (
        extra["alpha_source"] == "keyed_matte" and extra["transparency"]["transparent_share"] > 0.5
    )
    with Image.open(io.BytesIO(_bytes(result.data[0]))) as img:
        assert img.mode == "RGBA"


def test_2026_values_are_accepted_and_the_answer_says_what_codex_sent_upstream(client, fresh):
    raw = client.images.with_raw_response.generate(
        model="gpt-image-2.6-flare",
        prompt="a kite over the sea",
        quality="xhigh",
        moderation="low",
        output_format="webp",
        output_compression=70,
    )
    result = raw.parse()
    (body,) = [r["body"] for r in fresh.records.all("images.generations")]
    # The answer's model and quality are what codex really asked the image model for.
    assert (
        (body["model"], body["quality"])
        == (result.model_extra["model"], result.quality)
        == ("gpt-image-2", "auto")
    )
    assert "moderation" not in body, "codex sends no moderation: the header must say it was ignored"
    assert raw.headers["x-codex-image-ignored"] == "moderation, model, quality"
    with Image.open(io.BytesIO(_bytes(result.data[0]))) as img:
        assert img.format == "WEBP"


def test_a_safety_refusal_is_openai_moderation_blocked(client, fresh):
    with pytest.raises(openai.BadRequestError) as err:
        client.images.generate(prompt="a red kite [[upstream: moderation]]")
    assert err.value.status_code == 400 and err.value.code == "moderation_blocked"
    assert err.value.body["type"] == "image_generation_user_error" and err.value.param == "prompt"
    assert "safety system" in err.value.message
    assert [r["answer"] for r in fresh.records.all("images.generations")] == [
        "http 400 moderation_blocked"
    ]
