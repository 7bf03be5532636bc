"""Helpers for the history tests: real servers, a real SQLite file."""

from __future__ import annotations

import pytest

from tests.support import databases
from tests.support.generating import generate  # noqa: F401 - the modules here import it from here


def all_pages(call, request, metadata=None, field: str = "images") -> list:
    """Every item of a list, page by page, following next_page_token."""
    items = []
    while True:
        page = call(request, metadata=metadata, timeout=30)
        items.extend(getattr(page, field))
        if not page.next_page_token:
            return items
        request.page_token = page.next_page_token


# Every history test runs on both index backends: the embedded SQLite and
# PostgreSQL (what several replicas share). Each module gets its own database,
# and each test its own for the servers it starts itself.
@pytest.fixture(scope="module", params=["sqlite", "postgres"], autouse=True)
def backend(request):
    if request.param == "sqlite":
        with databases.servers_use(None):
            yield "sqlite"
        return
    pg = request.getfixturevalue("postgres")
    with databases.servers_use(databases.new_database(pg)):
        yield "postgres"


@pytest.fixture(autouse=True)
def _own_database(request, backend):
    if backend == "sqlite":
        yield
        return
    with databases.servers_use(databases.new_database(request.getfixturevalue("postgres"))):
        yield
