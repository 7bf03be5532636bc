"""Fixtures for driving the real codex through the gRPC server.

One stand-in and one server per module: per-test behaviour comes from
`[[upstream: ...]]` directives in the prompt, which the server passes
through to codex and codex passes on to the stand-in.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from tests.support.server_proc import start_server
from tests.upstream_standin import MOCK_API_KEY, UpstreamStandin, write_codex_home

from . import realcodex


@pytest.fixture(scope="module")
def real_codex() -> Path:
    return realcodex.codex_or_skip()


@pytest.fixture(scope="module")
def standin():
    with UpstreamStandin() as running:
        yield running


@pytest.fixture(scope="module")
def mock_home(tmp_path_factory, standin) -> Path:
    # realpath: the server and codex see /tmp paths resolved; so must our checks.
    home = Path(os.path.realpath(tmp_path_factory.mktemp("realcodex-home")))
    write_codex_home(home, standin.base_url)
    return home


@contextlib.contextmanager
def _real_server(tmp_path_factory, codex: Path, home: Path, http: bool = False):
    tmp = tmp_path_factory.mktemp("realcodex-server")
    try:
        # Not logged in: the mock provider in config.toml is what makes it ready.
        with start_server(
            tmp,
            codex=codex,
            codex_home=home,
            logged_in=False,
            http=http,
            env={"MOCK_API_KEY": MOCK_API_KEY},
        ) as srv:
            yield srv
    finally:
        # Whatever the server did, no codex of ours may outlive the module.
        realcodex.kill_groups(realcodex.processes_with_codex_home(home))


@pytest.fixture(scope="module")
def server(tmp_path_factory, real_codex, mock_home):
    """The real server spawning the native codex binary, as it does by default."""
    with _real_server(tmp_path_factory, realcodex.native_codex(real_codex), mock_home) as srv:
        yield srv


@pytest.fixture(scope="module")
def http_server(tmp_path_factory, real_codex, mock_home):
    """The real server with its /v1 HTTP shim, spawning the native codex."""
    with _real_server(
        tmp_path_factory, realcodex.native_codex(real_codex), mock_home, http=True
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def wrapper_server(tmp_path_factory, real_codex, mock_home):
    """The same, but spawning the npm Node wrapper (two processes per run)."""
    with _real_server(tmp_path_factory, real_codex, mock_home) as srv:
        yield srv


@pytest.fixture
def fresh(standin):
    """A clean record and default switches for each test."""
    standin.records.clear()
    standin.reset_switches()
    return standin
