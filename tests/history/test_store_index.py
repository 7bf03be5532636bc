"""The SQLite index itself (a real file): text search answers the same
whether the trigram index or the time-ordered scan serves it, and paging
through either returns every match once."""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest
from codex_image_server.store import Query, SqliteMetadata, StoredImage, new_id, paging

from tests.support import databases

BASE = dict(
    request_id="r",
    index=0,
    label="Candidate 1",
    mime_type="image/png",
    width=1,
    height=1,
    byte_size=10,
    sha256="0" * 64,
    revised_prompt="",
    thread_id="",
    requested_size="auto",
    resolved_size="auto",
    aspect="",
    quality="auto",
    output_format="png",
    duration_ms=1,
)


def image(i: int, prompt: str) -> StoredImage:
    return StoredImage(id=new_id(), prompt=prompt, created_unix_ms=1_000_000 + i, **BASE)


PROMPTS = [
    f"{'common lantern' if i % 2 else 'plain'} {'Zeppelin' if i % 300 == 7 else ''} #{i}"
    for i in range(2400)
]


@pytest.fixture
def meta(tmp_path, backend, request):
    if backend == "postgres":
        from codex_image_server.store.postgres import PostgresMetadata  # noqa: PLC0415 - psycopg only here

        m = PostgresMetadata(
            databases.new_database(request.getfixturevalue("postgres")), replica="test"
        )
    else:
        m = SqliteMetadata(tmp_path / "index.sqlite3")
    # 1200 with a common word (the scan serves it), 8 with a rare one (the
    # trigram index serves it), the rest with neither.
    m.add_images([image(i, prompt) for i, prompt in enumerate(PROMPTS)])
    yield m
    m.close()


def every(meta: SqliteMetadata, text: str, page: int = 37) -> list[StoredImage]:
    out, query = [], Query(page_size=page, prompt_contains=text)
    while True:
        got = paging.page(
            "images",
            query,
            meta.list_images,
            lambda r: paging.Cursor(r.created_unix_ms, r.id),
            meta.page_secret(),
        )
        out += got.items
        if not got.next_page_token:
            return out
        query = dataclasses.replace(query, page_token=got.next_page_token)


@pytest.mark.parametrize("text", ["LANTERN", "zeppelin", "n #1", "n  #1", "%", "n", "#23"])
def test_text_search_finds_each_match_once_newest_first(meta, text):
    expected = sum(text.lower() in p.lower() for p in PROMPTS)
    found = every(meta, text)
    ids = [i.id for i in found]
    assert len(ids) == len(set(ids)) == expected
    assert [i.created_unix_ms for i in found] == sorted(
        (i.created_unix_ms for i in found), reverse=True
    )
    assert all(text.lower() in i.prompt.lower() for i in found)


def test_deleted_images_leave_the_text_index(meta, tmp_path, backend):
    rare = every(meta, "zeppelin")
    for img in rare[:3]:
        assert meta.delete_image(img.id) == img
    assert {i.id for i in every(meta, "zeppelin")} == {i.id for i in rare[3:]}
    assert len(rare) == 8
    if backend != "sqlite":
        return  # below: SQLite's own trigram index (PostgreSQL answers with ILIKE)
    db = sqlite3.connect(tmp_path / "index.sqlite3")
    assert (
        db.execute(
            "SELECT count(*) FROM images_text WHERE images_text MATCH '\"zeppelin\"'"
        ).fetchone()[0]
        == 5
    )
    assert len(rare) == 8
