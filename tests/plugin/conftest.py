"""One server (gRPC and the /v1 shim, fake codex) shared by the plugin tests,
served in-process (tests/support/inprocess_server.py): they only call it."""

from __future__ import annotations

import pytest

from tests.support.inprocess_server import serve_in_process


@pytest.fixture(scope="session")
def plugin_server(tmp_path_factory):
    with serve_in_process(tmp_path_factory.mktemp("plugin"), http=True) as srv:
        yield srv


@pytest.fixture(scope="session")
def plugin_stub(plugin_server):
    channel = plugin_server.channel()
    yield plugin_server.stub(channel)
    channel.close()
