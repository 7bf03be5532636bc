"""What the store keeps: an image's record, a request's record, the queries
that list them and a page of results. Plain data, no storage in here."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from codex_image_server.request.imaging import EXTENSION_BY_MIME

# A request's life: running, then one of the others. "refused" never ran
# (bad input, a full queue, a key over its limit).
STATUSES = ("running", "completed", "failed", "cancelled", "refused")


@dataclasses.dataclass(frozen=True)
class StoredImage:
    """The metadata record kept with every image; survives restarts."""

    id: str
    request_id: str
    index: int
    label: str
    mime_type: str
    width: int
    height: int
    byte_size: int
    sha256: str
    revised_prompt: str
    thread_id: str
    prompt: str
    requested_size: str
    resolved_size: str
    aspect: str
    quality: str
    output_format: str
    duration_ms: int
    created_unix_ms: int
    # Added with exact delivered sizes; defaults keep records written before them readable.
    target_size: str = ""
    aspect_ratio: str = ""
    aspect_source: str = ""
    fit: str = ""
    native_width: int = 0
    native_height: int = 0
    resized: bool = False
    enlarged: bool = False
    references: tuple = ()  # ReferenceUse records as dicts
    key_name: str = ""
    account: str = ""
    # The history row of the request that made it (0: unknown, e.g. migrated).
    request_seq: int = 0
    # Added with transparent backgrounds; defaults likewise.
    background: str = "auto"
    alpha_source: str = ""  # transparency.IMAGE_MODEL | KEYED_MATTE
    transparency: dict | None = None  # matte.Figures as a dict
    usage: dict | None = None  # codex's turn.completed usage

    @property
    def file_name(self) -> str:
        return f"{self.id}.{EXTENSION_BY_MIME[self.mime_type]}"


@dataclasses.dataclass(frozen=True)
class RequestRecord:
    """One Generate request as the history keeps it."""

    seq: int
    request_id: str
    status: str
    created_unix_ms: int
    key_name: str = ""
    surface: str = ""
    prompt: str = ""
    count: int = 0
    requested_size: str = ""
    resolved_size: str = ""
    aspect: str = ""
    quality: str = ""
    output_format: str = ""
    reference_count: int = 0
    ended_unix_ms: int = 0
    error_reason: str = ""
    error_message: str = ""
    queue_wait_ms: int = 0
    codex_ms: int = 0
    duration_ms: int = 0
    accounts: tuple[str, ...] = ()
    image_ids: tuple[str, ...] = ()
    image_count: int = 0
    # JSON {field: digest} of what a caller-chosen request id asked for
    # (request/fingerprint.py); "" when the server made the id.
    fingerprint: str = ""


@dataclasses.dataclass(frozen=True)
class KeyLoad:
    """What a key has going, as the store counts it for the key's limits."""

    running: int  # its requests running now (on every replica still alive)
    images: int  # since the day's start: images made, and asked for by running requests


@dataclasses.dataclass(frozen=True)
class Admission:
    """A key's limits, checked in the same step that records its request (so
    two requests, on any replicas, cannot both slip under a limit): `check`
    raises to refuse, given the key's load counted from `since_unix_ms`."""

    since_unix_ms: int
    check: Callable[[KeyLoad], None]


# Called with the newest earlier request of the same key and request id
# (refused ones skipped; a running one whose replica died reads as failed),
# or None, in the step that records the new one: raising stops the recording.
SameId = Callable[["RequestRecord | None"], None]


@dataclasses.dataclass(frozen=True)
class Query:
    """Filters shared by both lists; every field left empty matches all."""

    page_size: int = 50
    page_token: str = ""
    start_unix_ms: int = 0
    end_unix_ms: int = 0
    request_id: str = ""
    key_name: str = ""
    prompt_contains: str = ""
    status: str = ""  # requests only
    # Set by tenancy.scoped, never by a caller: only this key's rows (None: anyone's).
    owner: str | None = None


@dataclasses.dataclass(frozen=True)
class Page:
    items: list
    next_page_token: str = ""
