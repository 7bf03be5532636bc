"""AIP-158 page tokens: opaque, and tied to the query that made them.

Keyset paging on (create time, id), newest first: a token holds the last row
seen, so rows landing while a caller pages never shift what comes next (no
row twice, none skipped). The token also carries a digest of the filters, so
a token cannot be replayed against another query (nor by another tenant:
the caller's scope is one of the filters), and an HMAC under the store's own
secret, so a token the server did not make is INVALID_ARGUMENT before any of
it is read.

Every filter string has a length limit (FILTER_MAX_CHARS): a prompt filter
becomes a trigram phrase whose cost grows with its length, so a long one is
refused before it reaches the store.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import json

from codex_image_server.errors import FieldViolation, invalid
from codex_image_server.store.records import Page, Query

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
# Longest text each filter may hold, in characters (INVALID_ARGUMENT beyond).
FILTER_MAX_CHARS = {
    "prompt_contains": 200,
    "request_id": 64,
    "key_name": 128,
    "status": 16,
    "page_token": 512,
}
_MAC_BYTES = 16
_MAX_MS = 2**53  # a cursor time past this is no time this server wrote


@dataclasses.dataclass(frozen=True)
class Cursor:
    created_unix_ms: int
    id: str  # images: the image id; requests: the row's sequence number as text


def _filters_digest(kind: str, query: Query) -> str:
    fields = dataclasses.asdict(query)
    fields.pop("page_size")
    fields.pop("page_token")
    return hashlib.sha256(json.dumps([kind, fields], sort_keys=True).encode()).hexdigest()[:16]


def _mac(secret: bytes, raw: bytes) -> bytes:
    return hmac.new(secret, raw, hashlib.sha256).digest()[:_MAC_BYTES]


def encode(kind: str, query: Query, cursor: Cursor, secret: bytes) -> str:
    raw = json.dumps(
        {"t": cursor.created_unix_ms, "i": cursor.id, "f": _filters_digest(kind, query)},
        separators=(",", ":"),
    ).encode()
    return base64.urlsafe_b64encode(_mac(secret, raw) + raw).decode().rstrip("=")


def _bad_token(description: str):
    return invalid([FieldViolation("page_token", description, "INVALID_PAGE_TOKEN")])


def decode(kind: str, query: Query, secret: bytes) -> Cursor | None:
    token = query.page_token
    if not token:
        return None
    try:
        signed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, binascii.Error):
        raise _bad_token("not a page token this server made") from None
    mac, raw = signed[:_MAC_BYTES], signed[_MAC_BYTES:]
    if not hmac.compare_digest(mac, _mac(secret, raw)):
        raise _bad_token("not a page token this server made")
    try:
        fields = json.loads(raw)
        cursor = Cursor(int(fields["t"]), str(fields["i"]))
        digest = fields["f"]
    except (ValueError, TypeError, KeyError):
        raise _bad_token("not a page token this server made") from None
    if not 0 <= cursor.created_unix_ms < _MAX_MS:
        raise _bad_token("not a page token this server made")
    if digest != _filters_digest(kind, query):
        raise _bad_token("the filters differ from the ones the token was made for")
    return cursor


def check_filters(query: Query) -> None:
    """INVALID_ARGUMENT naming every filter longer than its limit."""
    bad = [
        FieldViolation(name, f"at most {limit} characters", "FILTER_TOO_LONG")
        for name, limit in FILTER_MAX_CHARS.items()
        if len(getattr(query, name)) > limit
    ]
    # Times a store column can hold (a Timestamp may say year 9999 or before 1970).
    bad += [
        FieldViolation(name.replace("_unix_ms", "_time"), "out of range", "INVALID_TIME")
        for name in ("start_unix_ms", "end_unix_ms")
        if not 0 <= getattr(query, name) < _MAX_MS
    ]
    if bad:
        raise invalid(bad)


def page_size(query: Query) -> int:
    if query.page_size < 0:
        raise invalid([FieldViolation("page_size", "must not be negative", "INVALID_PAGE_SIZE")])
    return min(query.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def page(kind: str, query: Query, fetch, cursor_of, secret: bytes):
    """One page from `fetch(query, after, limit)`, with the token for the next
    (signed with `secret`, the store's own)."""
    check_filters(query)
    limit = page_size(query)
    rows = fetch(query, decode(kind, query, secret), limit + 1)
    if len(rows) <= limit:
        return Page(rows)
    rows = rows[:limit]
    return Page(rows, encode(kind, query, cursor_of(rows[-1]), secret))
