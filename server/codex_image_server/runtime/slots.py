"""Generation slots: at most `limit` codex processes at once, and a bounded
first-come-first-served queue of requests waiting for them.

A request takes all the slots it needs at once (its candidates must run side
by side); one that cannot even queue is refused at once. Used from the event
loop only: a queued request waits on a future, holding no thread.
"""

from __future__ import annotations

import asyncio
from collections import deque

from codex_image_server.errors import Kind, ServiceError


class Slots:
    def __init__(self, limit: int, queue_limit: int):
        self.limit = limit
        self.queue_limit = queue_limit
        self._in_use = 0
        self._waiting: deque[Ticket] = deque()

    def snapshot(self) -> tuple[int, int, int]:
        """(in use, free, queued)."""
        return self._in_use, self.limit - self._in_use, len(self._waiting)

    def enter(self, n: int) -> Ticket:
        """Take min(n, limit) slots now if free, else join the queue (or be
        refused at once when it is full). Wait on the ticket for the slots."""
        n = min(n, self.limit)
        ticket = Ticket(self, n)
        if not self._waiting and self._in_use + n <= self.limit:
            self._in_use += n
            ticket.granted = True
            return ticket
        if len(self._waiting) >= self.queue_limit:
            raise ServiceError(
                Kind.RESOURCE_EXHAUSTED,
                "QUEUE_FULL",
                f"{self._in_use} of {self.limit} generation slots busy and "
                f"{len(self._waiting)} requests already waiting; try again shortly",
                retry_after_s=5,
            )
        ticket.position = len(self._waiting)
        ticket.ready = asyncio.get_running_loop().create_future()
        self._waiting.append(ticket)
        return ticket

    def _grant(self) -> None:
        """Hand free slots to the head of the queue, in order."""
        while self._waiting and self._in_use + self._waiting[0].n <= self.limit:
            ticket = self._waiting.popleft()
            self._in_use += ticket.n
            ticket.granted = True
            if ticket.ready is not None and not ticket.ready.done():
                ticket.ready.set_result(None)

    def _leave(self, ticket: Ticket) -> None:
        if ticket in self._waiting:
            self._waiting.remove(ticket)
            self._grant()  # a large request leaving may let smaller ones in

    def release(self, n: int) -> None:
        self._in_use -= n
        self._grant()


class Ticket:
    """A request's claim on `n` slots; `position` is its place in the queue."""

    def __init__(self, slots: Slots, n: int):
        self.slots = slots
        self.n = n
        self.granted = False
        self.position = 0
        self.ready: asyncio.Future | None = None

    async def wait(self, cancelled: asyncio.Event) -> None:
        """Until the slots are ours; CANCELLED if `cancelled` is set first."""
        if self.granted:
            return
        assert self.ready is not None  # set by Slots.enter before the ticket is handed out
        stop = asyncio.ensure_future(cancelled.wait())
        try:
            await asyncio.wait((self.ready, stop), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if not self.granted:
            raise ServiceError(Kind.CANCELLED, "REQUEST_CANCELED", "cancelled while queued")

    def release(self) -> None:
        """Give the slots back, or leave the queue if they never came."""
        if self.granted:
            self.granted = False
            self.slots.release(self.n)
        else:
            self.slots._leave(self)
