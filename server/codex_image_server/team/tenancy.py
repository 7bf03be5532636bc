"""Whose work a caller may see: the one place listing, fetching and deleting
are scoped to a key, for every surface (gRPC, /v1, the OpenAI routes and
the console all reach the store through the service, which asks here).

A member key owns the images and requests made with it and sees nothing
else: another key's id answers NOT_FOUND, exactly as an id that does not
exist. An admin key (the env key, a keys-file key with "role": "admin") and
the caller of an open server without keys see everyone's work; an admin may
narrow a list to one key with the `key_name` filter.
"""

from __future__ import annotations

import dataclasses

from codex_image_server.store import Query
from codex_image_server.team.keys import ApiKey

EVERYONE = None  # the owner filter of a caller who sees all


def owner(key: ApiKey) -> str | None:
    """The key name the caller's reads and deletes are confined to, or EVERYONE."""
    return EVERYONE if key.is_admin else key.name


def scoped(query: Query, key: ApiKey) -> Query:
    """The list query as this caller may run it: a member's matches its own
    rows only (a `key_name` filter naming another key then matches none)."""
    return dataclasses.replace(query, owner=owner(key))
