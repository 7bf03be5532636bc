"""A caller is told a Generate completed only once the history says so.
Several replicas share PostgreSQL: an outcome kept in a replica's memory to
write "later" died with the replica, and the restarted replica then marked
the request failed, though its caller had its images (found by `make
chaos`). In-process, so the database can go away between a request's image
and its summary."""

from __future__ import annotations

import asyncio
import time

import pytest
from codex_image_cluster.postgres import Postgres
from codex_image_server.dataplane.service import Caller
from codex_image_server.errors import Kind, ServiceError
from codeximage.v1 import image_service_pb2 as pb

from tests.support import procs
from tests.support.inprocess import running_service


@pytest.fixture
def own_postgres():
    """A PostgreSQL of this test's own: it is stopped and started again."""
    pg = Postgres().start()
    yield pg
    pg.remove()


def test_the_summary_waits_for_the_outcome_and_a_lost_database_is_unavailable(
    tmp_path, own_postgres
):
    async def scenario():
        env = {"CODEX_IMAGE_SERVER_DATABASE_URL": own_postgres.url}
        async with running_service(tmp_path, env=env) as parts:
            handlers, caller = parts.handlers, Caller()
            request = pb.GenerateRequest(prompt="a fox [[fake delay=0.2]]", request_id="told-1")

            # With the database there, the outcome is written before the summary is sent.
            async for event in handlers.generate(caller, request):
                if event.HasField("summary"):
                    record = parts.service.get_request("told-1", caller).record
                    assert record.status == "completed"
                    assert list(record.image_ids) == list(event.summary.image_ids)

            # The database goes away after the image, before the summary.
            request = pb.GenerateRequest(prompt="a hen [[fake delay=0.2]]", request_id="told-2")
            stream = handlers.generate(caller, request)
            image = None
            with pytest.raises(ServiceError) as raised:
                async for event in stream:
                    assert not event.HasField("summary"), "told it completed, nothing recorded"
                    if event.HasField("image"):
                        image = event.image
                        await asyncio.to_thread(own_postgres.stop)
            assert image is not None
            assert raised.value.kind is Kind.UNAVAILABLE
            assert raised.value.reason == "DATABASE_UNAVAILABLE"

            # Back again: the outcome kept for later is written, as completed
            # with its image, and asking again with the id gets that image.
            await asyncio.to_thread(own_postgres.start)

            def recorded():
                try:
                    detail = parts.service.get_request("told-2", caller)
                except ServiceError:
                    return None
                return detail.record if detail.record.status != "running" else None

            written = await asyncio.to_thread(procs.wait_until, recorded, 30, 0.1)
            assert written, "the kept outcome was not written within 30 s"
            record = recorded()
            assert record.status == "completed"
            assert list(record.image_ids) == [image.id]
            again = [e async for e in handlers.generate(caller, request)]
            assert [e.image.id for e in again if e.HasField("image")] == [image.id]
            assert again[-1].summary.image_ids == [image.id]

    asyncio.run(scenario())


def test_an_outcome_waiting_for_postgresql_does_not_stall_the_other_calls(tmp_path, own_postgres):
    """A request that ends while PostgreSQL is away waits for it (the pool's
    wait, 5 s) off the event loop: the server's other calls go on meanwhile."""

    async def scenario():
        env = {"CODEX_IMAGE_SERVER_DATABASE_URL": own_postgres.url}
        async with running_service(tmp_path, env=env) as parts:
            handlers, caller = parts.handlers, Caller()
            request = pb.GenerateRequest(prompt="a cat [[fake delay=30]]", request_id="stall-1")
            stream = handlers.generate(caller, request)
            first = await anext(stream)  # admitted and recorded: it runs
            assert first.HasField("progress"), first
            await asyncio.to_thread(own_postgres.stop)

            gaps, ticking = [], True

            async def tick():
                last = time.monotonic()
                while ticking:
                    await asyncio.sleep(0.05)
                    now = time.monotonic()
                    gaps.append(now - last)
                    last = now

            ticker = asyncio.create_task(tick())
            await asyncio.sleep(0.2)
            ended = time.monotonic()
            await stream.aclose()  # the caller leaves: its outcome goes to PostgreSQL
            ended = time.monotonic() - ended
            ticking = False
            await ticker
            assert ended >= 1, f"the outcome did not wait for PostgreSQL ({ended:.2f} s)"
            assert max(gaps) < 1, f"the event loop stalled for {max(gaps):.1f} s"

    asyncio.run(scenario())
