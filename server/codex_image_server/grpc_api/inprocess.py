"""Calling ImageService in the same process, the way grpc-gateway's
Register...HandlerServer does: the same servicer methods, with the same
auth and error mapping, and no loopback hop.

`InProcessContext` is the one adapter: it gives the servicer what it uses
of grpc.aio.ServicerContext (invocation metadata, peer, write with flow
control, abort with a rich status, done callbacks, cancellation). An abort
surfaces to the caller as `InProcessRpcError`, a grpc.RpcError with the same
code, details and trailing metadata (grpc-status-details-bin) a remote
caller would get.
"""
from __future__ import annotations

import asyncio
from typing import AsyncIterator

import grpc

from .wire import Received

_END = object()


class InProcessRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata):
        super().__init__(details)
        self._code, self._details = code, details
        self._trailing = tuple(trailing_metadata or ())

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self):
        return self._trailing


class InProcessContext:
    def __init__(self, metadata, peer: str):
        self._metadata = tuple(metadata or ())
        self._peer = peer
        self._callbacks: list = []
        self._done = False
        self._cancelled = False
        self._caller_left = False
        # Streams only. One message in flight: write() waits until the caller
        # took the last one, as gRPC flow control makes a remote writer wait.
        self.responses: asyncio.Queue | None = None

    def invocation_metadata(self):
        return self._metadata

    def peer(self) -> str:
        return self._peer

    def time_remaining(self):
        return None

    async def write(self, message) -> None:
        if self._caller_left:
            # Nobody takes it any more. A remote caller's write fails at once
            # too; waiting here would hold the call (its codex, its slots)
            # until the download idle timer noticed, should the handler have
            # missed its cancellation.
            raise asyncio.CancelledError()
        await self.responses.put(message)

    def caller_left(self) -> None:
        """The caller stopped reading: every later write fails."""
        self._caller_left = True

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata=()):
        raise InProcessRpcError(code, details, trailing_metadata)

    def add_done_callback(self, callback) -> None:
        self._callbacks.append(callback)

    def cancelled(self) -> bool:
        return self._cancelled

    def done(self) -> bool:
        return self._done

    def finish(self, cancelled: bool) -> None:
        if self._done:
            return
        self._done, self._cancelled = True, cancelled
        for callback in self._callbacks:
            callback(self)


class InProcessChannel:
    """Unary and server-streaming calls straight into the servicer."""

    def __init__(self, servicer, peer: str = "inprocess:http-shim"):
        self._servicer = servicer
        self._peer = peer

    @property
    def keyring(self):
        """The servicer's keys, for a check made before a request is even parsed."""
        return self._servicer.keyring

    async def unary(self, method: str, request, metadata=()):
        context = InProcessContext(metadata, self._peer)
        ok = False
        try:
            response = await getattr(self._servicer, method)(request, context)
            ok = True
            return response
        except InProcessRpcError:
            ok = True  # ended with a status, like a finished remote call
            raise
        finally:
            context.finish(cancelled=not ok)

    async def stream(self, method: str, request, metadata=()) -> AsyncIterator:
        """The handler runs as its own task writing into the context; use with
        contextlib.aclosing: leaving early cancels the call."""
        context = InProcessContext(metadata, self._peer)
        context.responses = asyncio.Queue(maxsize=1)
        # Boxed as a request from the wire is: the servicer takes it out, and
        # neither this frame nor its wrapper keeps it (and its references) alive
        # for the whole call.
        box = Received(request)
        del request

        async def run():
            await getattr(self._servicer, method)(box, context)
            await context.write(_END)  # an abort raises instead

        handler = asyncio.create_task(run())
        ended = False
        getter = None
        try:
            while True:
                getter = asyncio.ensure_future(context.responses.get())
                await asyncio.wait((getter, handler), return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    handler.result()  # the handler ended without _END: it raised (an abort)
                message = getter.result()
                if message is _END:
                    break
                yield message
            await handler  # raises InProcessRpcError if it aborted after its last message
            ended = True
        except InProcessRpcError:
            ended = True
            raise
        finally:
            if getter is not None and not getter.done():
                getter.cancel()  # left pending, it would outlive the call
            if not handler.done():
                context.caller_left()
                handler.cancel()
                try:
                    # Shielded: a caller cancelled again while it waits (anyio
                    # delivers a cancellation at every await) must not cancel
                    # the handler twice, which would cut its cleanup short
                    # (codex waited for, slots given back).
                    await asyncio.shield(handler)
                except (asyncio.CancelledError, Exception):  # noqa: BLE001 - the caller left; only cleanup matters
                    pass
            context.finish(cancelled=not ended)
