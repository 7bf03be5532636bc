"""One shim server per module where tests only read; tests that need their
own settings start their own. Every server is stopped when its module ends.
A module whose tests need no server process sets `IN_PROCESS = True`: its
two servers are then served in the test's own process
(tests/support/inprocess_server.py), over the same real sockets."""

from __future__ import annotations

import pytest

from tests.support.inprocess_server import serve_in_process
from tests.support.server_proc import start_server

KEY = "shim-test-key"


def _serve(request, tmp_path_factory, name: str, env: dict | None = None):
    serve = serve_in_process if getattr(request.module, "IN_PROCESS", False) else start_server
    return serve(tmp_path_factory.mktemp(name), http=True, env=env)


@pytest.fixture(scope="module")
def open_server(request, tmp_path_factory):
    with _serve(request, tmp_path_factory, "shim-open") as srv:
        yield srv


@pytest.fixture(scope="module")
def keyed_server(request, tmp_path_factory):
    with _serve(
        request, tmp_path_factory, "shim-keyed", env={"CODEX_IMAGE_SERVER_API_KEY": KEY}
    ) as srv:
        yield srv
