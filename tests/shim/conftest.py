"""One shim server per module where tests only read; tests that need their
own settings start their own. Every server is stopped by start_server."""

from __future__ import annotations

import pytest

from tests.support.server_proc import start_server

KEY = "shim-test-key"


@pytest.fixture(scope="module")
def open_server(tmp_path_factory):
    with start_server(tmp_path_factory.mktemp("shim-open"), http=True) as srv:
        yield srv


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory):
    with start_server(
        tmp_path_factory.mktemp("shim-keyed"), http=True, env={"CODEX_IMAGE_SERVER_API_KEY": KEY}
    ) as srv:
        yield srv
