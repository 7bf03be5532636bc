"""A test CODEX_HOME whose config points codex at the stand-in.

The provider block is the one codex-notes.md gives ("Testing offline against
the real binary"). The `x-openai-actor-authorization` header is what makes
0.169.0 offer its `image_gen.imagegen` tool to a non-ChatGPT provider: local
test upstreams only.
"""

from __future__ import annotations

import os
from pathlib import Path

MOCK_API_KEY = "standin-dummy-key"  # any non-empty value; never a real key

CONFIG_TEMPLATE = """\
model = "gpt-5.4"
model_provider = "mock"
approval_policy = "never"
sandbox_mode = "read-only"

[model_providers.mock]
name = "mock"
base_url = "{base_url}"
wire_api = "responses"
env_key = "MOCK_API_KEY"
request_max_retries = 0
stream_max_retries = 0
http_headers = {{ "x-openai-actor-authorization" = "test" }}
"""


def write_codex_home(path: str | os.PathLike, base_url: str) -> dict[str, str]:
    """Write `<path>/config.toml` for the stand-in at `base_url` (ending in /v1).

    Returns the environment variables a codex process needs to use it.
    """
    home = Path(path)
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(CONFIG_TEMPLATE.format(base_url=base_url))
    return {"CODEX_HOME": str(home), "MOCK_API_KEY": MOCK_API_KEY}
