"""Fixtures for the gRPC service's tests: real server processes on 127.0.0.1."""

from __future__ import annotations

import pytest

from tests.support.server_proc import start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for a module: fake codex, default limits, a short kill grace."""
    with start_server(tmp_path_factory.mktemp("srv"), args=["--kill-grace-ms", "500"]) as srv:
        yield srv
