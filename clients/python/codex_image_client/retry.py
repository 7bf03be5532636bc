"""When and how long to wait before trying a refused call again.

Retried: QUEUE_FULL (the server's queue is full), UNAVAILABLE answered by the
server itself (it is shutting down, or codex's turn failed upstream) and
CONNECTION_LOST (a balancer's stream cut when the replica behind it died; a
retry reaches another replica), after the delay its RetryInfo names, or a
growing one when it names none; at most `attempts` tries in all and each wait
at most `max_delay_s`. A server that cannot be reached at all is not retried:
nothing is listening, and the caller should hear so at once (see
`not_running`)."""

from __future__ import annotations

import dataclasses

import grpc

from .errors import ClientError


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # tries in all, the first included
    max_delay_s: float = 60.0  # the longest single wait, whatever RetryInfo says
    base_delay_s: float = 1.0  # first wait when the server names none; doubles

    def delay(self, error: ClientError, attempt: int) -> float | None:
        """Seconds to wait before try `attempt + 1`, or None to give up."""
        if attempt >= self.attempts or not retryable(error):
            return None
        suggested = error.retry_delay_s
        if suggested is None:
            suggested = self.base_delay_s * 2 ** (attempt - 1)
        return max(0.0, min(suggested, self.max_delay_s))


def retryable(error: ClientError) -> bool:
    if error.code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return error.reason == "QUEUE_FULL"  # never QUOTA_EXHAUSTED: waiting seconds will not help
    return error.code == grpc.StatusCode.UNAVAILABLE and not not_running(error)


def not_running(error: ClientError) -> bool:
    """UNAVAILABLE raised by grpcio itself (no ErrorInfo from a server):
    connection refused, no route, name not resolved."""
    return error.code == grpc.StatusCode.UNAVAILABLE and not error.reason


def not_running_hint(server: str, error: ClientError, env_server: str = "CODEX_IMAGE_ADDR") -> str:
    """What to do when nothing answers at `server`: how to start a server,
    or where to point the client instead."""
    return (
        f"no codex-image-server answers at {server} (UNAVAILABLE: {error.message}).\n"
        "  Start one in another terminal with `codex-image-server` (or `make run` in a checkout),\n"
        "  keep one running with `codex-image-server service install`,\n"
        f"  or point --server / ${env_server} at a running server."
    )
