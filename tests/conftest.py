"""Session-wide fixtures shared by several test directories, and the hooks
that split the suite for `make test` (tests/support/grouping.py)."""

from __future__ import annotations

import pytest

from tests.support import grouping


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadgroup` (what `make test` asks for) groups by grouping.group_of."""
    if config.getvalue("dist") == "loadgroup":
        return grouping.GroupScheduling(config, log)
    return None


@pytest.fixture(scope="session")
def postgres():
    """One real PostgreSQL for the whole run (for each xdist worker), started on first use."""
    from codex_image_cluster.postgres import Postgres  # noqa: PLC0415 - only when a test asks for it

    pg = Postgres().start()
    yield pg
    pg.remove()


@pytest.fixture(scope="module")
def stub(server):
    """A stub on its own channel to the directory's or module's `server`."""
    channel = server.channel()
    yield server.stub(channel)
    channel.close()
