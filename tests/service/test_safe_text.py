"""The model's and codex's free text, as a caller may see it: short, one
line, no file paths, nothing that looks like a credential, still a reason."""

from __future__ import annotations

from codex_image_server.engine import failures
from codex_image_server.engine.safe_text import MODEL_TEXT_MAX, safe

CONFIG_QUOTE = (
    'The command printed: model = "gpt-5.4"\nmodel_provider = "mock"\n'
    'base_url = "http://127.0.0.1:46417/v1"\nenv_key = "MOCK_API_KEY"'
)


def test_a_quoted_config_file_loses_its_values():
    said = safe(CONFIG_QUOTE)
    assert "gpt-5.4" not in said and "127.0.0.1" not in said and "MOCK_API_KEY" not in said
    assert said.startswith("The command printed: model = <redacted>")


def test_paths_and_credentials_are_replaced():
    said = safe(
        'cat /root/.codex/auth.json gave {"access_token": "eyJhbGciOiJIUzI1NiJ9abcdef1234567890"} '
        "token=abc123 sk-abcdefghijk1234 Authorization: Bearer cis_xyz ~/secret/file C:\\Users\\me"
    )
    for leaked in (
        "/root",
        ".codex",
        "eyJhbG",
        "abc123",
        "sk-abc",
        "cis_xyz",
        "secret/file",
        "Users",
    ):
        assert leaked not in said, (leaked, said)
    assert said.startswith("cat <path> gave")


def test_a_reason_stays_readable():
    quota = (
        "You've hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro) "
        "or try again at 6:43 AM."
    )
    assert safe(quota, 300) == quota
    assert (
        safe("I can't help with creating that image.") == "I can't help with creating that image."
    )
    assert (
        safe("image generation failed: http 403 Forbidden")
        == "image generation failed: http 403 Forbidden"
    )


def test_the_model_text_is_capped_short():
    said = safe("x " * 10_000)
    assert len(said) <= MODEL_TEXT_MAX + 3 and said.endswith("...")
    error = failures.no_image("word " * 1000 + CONFIG_QUOTE)
    assert len(error.message) < 300 and "MOCK_API_KEY" not in error.message
