"""A real PostgreSQL for the store tests (Debian's, via codex_image_cluster),
one per test session, with a fresh database per use so tests never see each
other's rows. `make test` installs PostgreSQL (cluster-deps): nothing skips."""

from __future__ import annotations

import contextlib
import itertools

from codex_image_cluster.postgres import Postgres

from . import server_proc

_names = itertools.count(1)


def new_database(pg: Postgres) -> str:
    name = f"t{next(_names)}"
    done = pg.psql(f"CREATE DATABASE {name}")
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return pg.url.rsplit("/", 1)[0] + "/" + name


@contextlib.contextmanager
def servers_use(url: str | None):
    """Servers started inside this use `url` as their database (None: SQLite)."""
    key = "CODEX_IMAGE_SERVER_DATABASE_URL"
    saved = server_proc.EXTRA_ENV.get(key)
    if url:
        server_proc.EXTRA_ENV[key] = url
    else:
        server_proc.EXTRA_ENV.pop(key, None)
    try:
        yield
    finally:
        if saved is None:
            server_proc.EXTRA_ENV.pop(key, None)
        else:
            server_proc.EXTRA_ENV[key] = saved
