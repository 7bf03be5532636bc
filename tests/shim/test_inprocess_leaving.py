"""The in-process channel when its caller leaves mid-stream. A handler that
misses its cancellation (asyncio.wait_for on Python 3.11 drops one that comes
as the awaited thing completes: it happened under the cancel storm) must not
be left waiting to hand a message to nobody, holding its codex and slots until
the download idle timer notices; its next write fails at once, as a write to
a remote caller that has gone does.

The stand-in servicer loses its cancellation on purpose: the real one no
longer can, and this is the channel's own promise."""
from __future__ import annotations

import asyncio
import contextlib

from codex_image_server.grpc_api.inprocess import InProcessChannel

LEAVE_WITHIN_S = 2.0


class LosesOneCancellation:
    def __init__(self):
        self.writes_after_leaving = 0

    async def Generate(self, request, context):  # noqa: N802 - the servicer's method name
        await context.write("first")
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass  # lost, as wait_for lost it
        while True:  # it goes on as if nobody had left
            await context.write("more")
            self.writes_after_leaving += 1


def test_a_handler_that_missed_its_cancellation_stops_at_its_next_write():
    servicer = LosesOneCancellation()

    async def scenario() -> None:
        call = InProcessChannel(servicer).stream("Generate", object())
        async with asyncio.timeout(LEAVE_WITHIN_S):
            async with contextlib.aclosing(call):
                assert await anext(call) == "first"
            # Leaving the block closed the call: it has ended (or the timeout failed it).
        running = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not running, f"still running after its caller left: {running}"

    asyncio.run(scenario())
    assert servicer.writes_after_leaving == 0
