"""One real server (fake codex, gRPC and HTTP on real sockets, an API key,
a directory /mcp may read references from) for the MCP tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.server_proc import start_server

KEY = "mcp-test-key"


@pytest.fixture(scope="module")
def reference_dir(tmp_path_factory) -> Path:
    return Path(os.path.realpath(tmp_path_factory.mktemp("mcp-refs")))


@pytest.fixture(scope="module")
def server(tmp_path_factory, reference_dir):
    with start_server(
        tmp_path_factory.mktemp("mcp"),
        http=True,
        args=["--kill-grace-ms", "500", "--mcp-reference-dir", str(reference_dir)],
        env={"CODEX_IMAGE_SERVER_API_KEY": KEY},
    ) as srv:
        yield srv
