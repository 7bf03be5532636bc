"""The domain's errors. They know nothing of gRPC or HTTP: transport adapters
map `Kind` to their own status codes in one place each.

`reason` is an UPPER_SNAKE ErrorInfo reason; the HTTP shim lower-cases it into
the plugin contract's `error.code` (e.g. MISSING_PROMPT -> missing_prompt).
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
from typing import Literal


class Kind(enum.Enum):
    INVALID_ARGUMENT = "invalid_argument"
    NOT_FOUND = "not_found"
    FAILED_PRECONDITION = "failed_precondition"
    RESOURCE_EXHAUSTED = "resource_exhausted"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    CANCELLED = "cancelled"
    UNAUTHENTICATED = "unauthenticated"
    PERMISSION_DENIED = "permission_denied"
    ALREADY_EXISTS = "already_exists"


@dataclasses.dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str
    reason: str


class ServiceError(Exception):
    """A failure a caller can act on: a kind, a stable reason and a message."""

    def __init__(
        self,
        kind: Kind,
        reason: str,
        message: str,
        *,
        violations: tuple[FieldViolation, ...] = (),
        metadata: dict[str, str] | None = None,
        retry_after_s: int | None = None,
    ):
        super().__init__(message)
        self.kind = kind
        self.reason = reason
        self.message = message
        self.violations = violations
        self.metadata = dict(metadata or {})
        self.retry_after_s = retry_after_s

    def __repr__(self) -> str:
        return f"ServiceError({self.kind.value}, {self.reason}, {self.message!r})"


class Outcome:
    """`with Outcome() as outcome:` around a stream: afterwards `outcome.error`
    is what it ended with (None: completed; the caller leaving: CANCELLED;
    anything unexpected: INTERNAL). The exception itself goes on."""

    def __init__(self):
        self.error: ServiceError | None = None

    def __enter__(self) -> Outcome:
        return self

    def __exit__(self, kind, exc, tb) -> Literal[False]:
        if isinstance(exc, ServiceError):
            self.error = exc
        elif isinstance(exc, (GeneratorExit, asyncio.CancelledError)):
            self.error = ServiceError(Kind.CANCELLED, "REQUEST_CANCELED", "the caller went away")
        elif exc is not None:
            self.error = ServiceError(Kind.INTERNAL, "INTERNAL", "internal error")
        return False


def invalid(violations: list[FieldViolation]) -> ServiceError:
    """One INVALID_ARGUMENT naming every bad field; its reason is the first one's."""
    first = violations[0]
    summary = "; ".join(f"{v.field}: {v.description}" for v in violations)
    return ServiceError(
        Kind.INVALID_ARGUMENT,
        first.reason,
        f"invalid request: {summary}",
        violations=tuple(violations),
    )


def not_found(what: str) -> ServiceError:
    return ServiceError(Kind.NOT_FOUND, "NOT_FOUND", f"{what} not found")


def shutting_down() -> ServiceError:
    return ServiceError(
        Kind.UNAVAILABLE,
        "SHUTTING_DOWN",
        "the server is shutting down; retry on another instance or after it restarts",
    )


def codex_unsupported(
    version: str, tested_range: str, tested: tuple[str, ...], seen: str
) -> ServiceError:
    """Codex made an image in a shape this server does not know. Never "no
    image": the image exists; the fix is a tested codex (the operator's)."""
    return ServiceError(
        Kind.FAILED_PRECONDITION,
        "CODEX_UNSUPPORTED",
        f"codex {version or 'of unknown version'} made an image in a shape this server does "
        f"not know ({seen}). The tested codex versions are {tested_range}: install one "
        "(`make codex`) or set CODEX_IMAGE_SERVER_CODEX_BIN to one.",
        metadata={"codex_version": version, "tested_versions": ", ".join(tested)},
    )


def moderation_blocked(said: str) -> ServiceError:
    """The image model's safety system refused the prompt (OpenAI's
    `moderation_blocked`): the caller must change the request."""
    return ServiceError(
        Kind.INVALID_ARGUMENT,
        "MODERATION_BLOCKED",
        "the image model's safety system rejected this request; change the prompt or the "
        f"references. It said: {said}",
        violations=(
            FieldViolation(
                "prompt", "rejected by the image model's safety system", "MODERATION_BLOCKED"
            ),
        ),
    )
