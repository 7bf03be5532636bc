"""AIP-158 page tokens: opaque, and tied to the query that made them.

Keyset paging on (create time, id), newest first: a token holds the last row
seen, so rows landing while a caller pages never shift what comes next (no
row twice, none skipped). The token also carries a digest of the filters, so
a token cannot be replayed against another query.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import json

from ..errors import FieldViolation, invalid
from .records import Page, Query

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


@dataclasses.dataclass(frozen=True)
class Cursor:
    created_unix_ms: int
    id: str  # images: the image id; requests: the row's sequence number as text


def _filters_digest(kind: str, query: Query) -> str:
    fields = dataclasses.asdict(query)
    fields.pop("page_size")
    fields.pop("page_token")
    return hashlib.sha256(json.dumps([kind, fields], sort_keys=True).encode()).hexdigest()[:16]


def encode(kind: str, query: Query, cursor: Cursor) -> str:
    raw = json.dumps({"t": cursor.created_unix_ms, "i": cursor.id, "f": _filters_digest(kind, query)},
                     separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _bad_token(description: str):
    return invalid([FieldViolation("page_token", description, "INVALID_PAGE_TOKEN")])


def decode(kind: str, query: Query) -> Cursor | None:
    token = query.page_token
    if not token:
        return None
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        cursor = Cursor(int(raw["t"]), str(raw["i"]))
        digest = raw["f"]
    except (ValueError, TypeError, KeyError):
        raise _bad_token("not a page token this server made") from None
    if digest != _filters_digest(kind, query):
        raise _bad_token("the filters differ from the ones the token was made for")
    return cursor


def page_size(query: Query) -> int:
    if query.page_size < 0:
        raise invalid([FieldViolation("page_size", "must not be negative", "INVALID_PAGE_SIZE")])
    return min(query.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def page(kind: str, query: Query, fetch, cursor_of):
    """One page from `fetch(query, after, limit)`, with the token for the next."""
    limit = page_size(query)
    rows = fetch(query, decode(kind, query), limit + 1)
    if len(rows) <= limit:
        return Page(rows)
    rows = rows[:limit]
    return Page(rows, encode(kind, query, cursor_of(rows[-1])))
