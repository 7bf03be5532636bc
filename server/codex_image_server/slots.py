"""Generation slots: at most `limit` codex processes at once, and a bounded
first-come-first-served queue of requests waiting for them.

A request takes all the slots it needs at once (its candidates must run side
by side); one that cannot even queue is refused at once.
"""
from __future__ import annotations

import threading
from collections import deque

from .errors import Kind, ServiceError


class Slots:
    def __init__(self, limit: int, queue_limit: int):
        self.limit = limit
        self.queue_limit = queue_limit
        self._in_use = 0
        self._waiting: deque[object] = deque()
        self._cond = threading.Condition()

    def snapshot(self) -> tuple[int, int, int]:
        """(in use, free, queued)."""
        with self._cond:
            return self._in_use, self.limit - self._in_use, len(self._waiting)

    def enter(self, n: int) -> "Ticket":
        """Take min(n, limit) slots now if free, else join the queue (or be
        refused at once when it is full). Wait on the ticket for the slots."""
        n = min(n, self.limit)
        ticket = Ticket(self, n)
        with self._cond:
            if not self._waiting and self._in_use + n <= self.limit:
                self._in_use += n
                ticket.granted = True
                return ticket
            if len(self._waiting) >= self.queue_limit:
                raise ServiceError(Kind.RESOURCE_EXHAUSTED, "QUEUE_FULL",
                                   f"{self._in_use} of {self.limit} generation slots busy and "
                                   f"{len(self._waiting)} requests already waiting; try again shortly",
                                   retry_after_s=5)
            ticket.position = len(self._waiting)
            self._waiting.append(ticket)
            return ticket

    def _wait(self, ticket: "Ticket", cancelled: threading.Event) -> None:
        with self._cond:
            try:
                while not (self._waiting[0] is ticket and self._in_use + ticket.n <= self.limit):
                    if cancelled.is_set():
                        raise ServiceError(Kind.CANCELLED, "REQUEST_CANCELED", "cancelled while queued")
                    self._cond.wait(timeout=0.5)
                self._in_use += ticket.n
                ticket.granted = True
            finally:
                self._waiting.remove(ticket)
                self._cond.notify_all()

    def _leave(self, ticket: "Ticket") -> None:
        with self._cond:
            if ticket in self._waiting:
                self._waiting.remove(ticket)
                self._cond.notify_all()

    def release(self, n: int) -> None:
        with self._cond:
            self._in_use -= n
            self._cond.notify_all()

    def wake(self) -> None:
        """Let waiters re-check their cancel flag now."""
        with self._cond:
            self._cond.notify_all()


class Ticket:
    """A request's claim on `n` slots; `position` is its place in the queue."""

    def __init__(self, slots: Slots, n: int):
        self.slots = slots
        self.n = n
        self.granted = False
        self.position = 0

    def wait(self, cancelled: threading.Event) -> None:
        if not self.granted:
            self.slots._wait(self, cancelled)

    def release(self) -> None:
        """Give the slots back, or leave the queue if they never came."""
        if self.granted:
            self.granted = False
            self.slots.release(self.n)
        else:
            self.slots._leave(self)
