"""One shim server per module where tests only read; tests that need their
own settings start their own. Every server is stopped when its module ends.
A module whose tests need no server process sets `IN_PROCESS = True`: its
two servers are then served in the test's own process
(tests/support/inprocess_server.py), over the same real sockets."""

from __future__ import annotations

import pytest

from tests.support.inprocess_server import serve_for

KEY = "shim-test-key"


@pytest.fixture(scope="module")
def open_server(request, tmp_path_factory):
    with serve_for(request)(tmp_path_factory.mktemp("shim-open"), http=True) as srv:
        yield srv


@pytest.fixture(scope="module")
def keyed_server(request, tmp_path_factory):
    with serve_for(request)(
        tmp_path_factory.mktemp("shim-keyed"), http=True, env={"CODEX_IMAGE_SERVER_API_KEY": KEY}
    ) as srv:
        yield srv
