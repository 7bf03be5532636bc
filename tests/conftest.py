"""Session-wide fixtures shared by several test directories."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def postgres():
    """One real PostgreSQL for the whole run, started on first use."""
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
