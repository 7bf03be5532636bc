"""The official `openai` Python SDK against a real server with the fake
codex: a server process, or served in-process for a module that sets
`IN_PROCESS = True` (tests/support/inprocess_server.py)."""

from __future__ import annotations

import openai
import pytest

from tests.support.inprocess_server import serve_for

KEY = "sdk-test-key"


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    with serve_for(request)(
        tmp_path_factory.mktemp("openai-sdk"),
        http=True,
        args=["--kill-grace-ms", "500"],
        env={"CODEX_IMAGE_SERVER_API_KEY": KEY},
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server):
    # Retries off: every error must reach the test as the SDK's own exception.
    with openai.OpenAI(
        base_url=server.http_base + "/v1", api_key=KEY, max_retries=0, timeout=60
    ) as c:
        yield c
