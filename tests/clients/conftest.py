"""One live server (fake codex) per test module, with an API key so every
client proves it sends one. Cancel tests check, by pid, that the server
killed every codex run of the call."""

from __future__ import annotations

import pytest

from tests.support import procs
from tests.support.fake_codex import png_bytes
from tests.support.server_proc import start_server

API_KEY = "client-test-key"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with start_server(
        tmp_path_factory.mktemp("srv"), env={"CODEX_IMAGE_SERVER_API_KEY": API_KEY}
    ) as srv:
        yield srv


@pytest.fixture
def ref_png(tmp_path):
    path = tmp_path / "ref.png"
    path.write_bytes(png_bytes(32, 32, 7))
    return path


def assert_runs_gone(srv, timeout: float = 15.0) -> None:
    """Every fake codex run this server ever started is gone (not even a zombie)."""
    runs = srv.fake_runs()
    assert runs, "no fake codex run was recorded"
    assert procs.wait_until(lambda: procs.all_gone(srv.fake_runs()), timeout), (
        f"codex runs still alive after cancel: {srv.fake_runs()}"
    )


def wait_for_runs(srv, n: int, timeout: float = 15.0) -> None:
    assert procs.wait_until(lambda: len(srv.fake_runs()) >= n, timeout), (
        f"expected {n} fake codex runs, saw {srv.fake_runs()}"
    )
