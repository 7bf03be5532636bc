"""Retention by age and by size at their edges (a real SQLite file and real
files), the sweeper in a running server, and codex's own copies removed
after each run (checked on disk)."""

from __future__ import annotations

import os
import time

import grpc
import pytest
from codex_image_server.store import INDEX_FILE, OutputStore, Query, RequestRecord
from codex_image_server.store.operations import OperationRecord
from codex_image_server.team.metrics import Metrics
from codex_image_server.team.retention import Retention
from codeximage.v1 import image_service_pb2 as pb

from tests.support.server_proc import start_server

from .conftest import generate

NOW = 1_800_000_000_000
NOTHING = {"age": 0, "size": 0, "requests": 0, "unrecorded": 0}


def save(store: OutputStore, created_ms: int, size: int = 100):
    return store.save(
        b"x" * size,
        request_id="r",
        index=0,
        label="Candidate 1",
        mime_type="image/png",
        width=1,
        height=1,
        revised_prompt="",
        thread_id="",
        prompt="p",
        requested_size="auto",
        resolved_size="auto",
        aspect="",
        quality="auto",
        output_format="png",
        duration_ms=1,
        created_unix_ms=created_ms,
    )


@pytest.fixture
def store(tmp_path):
    s = OutputStore(tmp_path / "out", tmp_path / "state" / INDEX_FILE)
    yield s
    s.close()


def kept(store: OutputStore) -> set[str]:
    return {p.stem for p in store.dir.iterdir()} & {
        i.id for i in store.metadata.oldest_images(1000)
    }


def test_age_edge_exactly_the_maximum_age_stays(store):
    at_edge = save(store, NOW - 10_000)
    past_edge = save(store, NOW - 10_001)
    fresh = save(store, NOW)
    assert Retention(store, Metrics(), max_age_s=10, max_bytes=0).sweep(NOW) == {
        **NOTHING,
        "age": 1,
    }
    assert kept(store) == {at_edge.id, fresh.id}
    assert not store.path(past_edge).exists()


def test_size_edge_exactly_the_maximum_bytes_stays(store):
    oldest, middle, newest = save(store, NOW - 3), save(store, NOW - 2), save(store, NOW - 1)
    metrics = Metrics()
    assert Retention(store, metrics, max_age_s=0, max_bytes=300).sweep(NOW) == NOTHING
    assert Retention(store, metrics, max_age_s=0, max_bytes=299).sweep(NOW) == {
        **NOTHING,
        "size": 1,
    }
    assert kept(store) == {middle.id, newest.id} and store.totals() == (2, 200)
    assert not store.path(oldest).exists()
    assert Retention(store, metrics, max_age_s=0, max_bytes=0).sweep(NOW) == NOTHING
    assert metrics.retention_deleted.labels("size")._value.get() == 1
    assert metrics.retention_bytes.labels("size")._value.get() == 100


def test_objects_no_record_names_go_once_older_than_the_unrecorded_age(store):
    recorded = save(store, NOW - 100_000)
    old_orphan = store.dir / f"img_{'a' * 32}.png"  # an upload cut off before its record
    young_orphan = store.dir / f"img_{'b' * 32}.png"  # perhaps an upload on its way to its record
    not_ours = store.dir / "notes.txt"
    unreadable_old_record = (
        store.dir / f"img_{'c' * 32}.json"
    )  # the migration skipped it: kept, with its image
    beside_it = store.dir / f"img_{'c' * 32}.png"
    for path, age_s in (
        (old_orphan, 61),
        (young_orphan, 59),
        (not_ours, 1000),
        (unreadable_old_record, 1000),
        (beside_it, 1000),
    ):
        path.write_bytes(b"x")
        os.utime(path, (NOW / 1000 - age_s, NOW / 1000 - age_s))
    os.utime(store.path(recorded), (NOW / 1000 - 1000, NOW / 1000 - 1000))
    assert Retention(store, Metrics(), 0, 0, unrecorded_age_s=60).sweep(NOW) == {
        **NOTHING,
        "unrecorded": 1,
    }
    assert not old_orphan.exists()
    assert young_orphan.exists() and not_ours.exists() and store.path(recorded).exists()
    assert unreadable_old_record.exists() and beside_it.exists()
    assert (
        Retention(store, Metrics(), 0, 0, unrecorded_age_s=0).sweep(NOW + 10**6) == NOTHING
    )  # 0: off
    assert young_orphan.exists()


def test_many_old_images_go_in_one_pass(store):
    for i in range(450):
        save(store, NOW - 100_000 - i, size=1)
    keep = save(store, NOW)
    assert Retention(store, Metrics(), max_age_s=50, max_bytes=0).sweep(NOW)["age"] == 450
    assert kept(store) == {keep.id}


def test_request_records_follow_the_image_retention_but_not_today_nor_running(store):
    day = 86_400_000

    def request(request_id: str, created_ms: int, status: str = "completed") -> None:
        store.metadata.begin_request(
            RequestRecord(0, request_id, status, created_ms, prompt=request_id)
        )

    request("two-days-old", NOW - 2 * day)
    request("still-running", NOW - 2 * day, "running")
    request("earlier-today", NOW - 60_000)  # past the maximum age, but counted by today's quotas
    request("fresh", NOW)
    swept = Retention(store, Metrics(), max_age_s=10, max_bytes=0).sweep(NOW)
    assert swept["requests"] == 1
    for request_id, there in (
        ("two-days-old", False),
        ("still-running", True),
        ("earlier-today", True),
        ("fresh", True),
    ):
        assert (store.metadata.get_request(request_id) is not None) == there, request_id
    # Its prompt is gone from the text index too.
    found = store.metadata.list_requests(Query(prompt_contains="two-days"), None, 10)
    assert found == []


def test_the_sweeper_deletes_old_images_in_a_running_server(tmp_path):
    with start_server(
        tmp_path, args=["--retention-max-age-s", "1", "--retention-interval-ms", "200"]
    ) as srv:
        stub = srv.stub()
        (image,), err = generate(stub, "short-lived", request_id="short-lived")
        assert err is None
        deadline = time.monotonic() + 20
        while True:
            try:
                stub.GetImage(pb.GetImageRequest(image_id=image.id))
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.NOT_FOUND
                break
            assert time.monotonic() < deadline, "the sweeper never deleted the old image"
            time.sleep(0.1)
        assert not (srv.output_dir / f"{image.id}.png").exists()
        assert (
            stub.GetRequest(pb.GetRequestRequest(request_id="short-lived")).request.status
            == "completed"
        )
    assert any(r["event"] == "retention.swept" for r in srv.log_records())


def codex_copies(home, thread_id: str) -> list:
    return list((home / "generated_images").glob(f"{thread_id}/*")) + list(
        home.glob(f"sessions/*/*/*/rollout-*-{thread_id}.jsonl")
    )


@pytest.mark.parametrize("remove", [True, False])
def test_codex_copies_are_removed_after_each_run(tmp_path, remove):
    args = [] if remove else ["--no-remove-codex-copies"]
    with start_server(tmp_path, args=args) as srv:
        images, err = generate(srv.stub(), "copies", count=2)
        assert err is None
        _, failed = generate(srv.stub(), "x [[fake mode=forbidden]]")
        assert failed is not None
    for image in images:
        assert image.thread_id
        left = codex_copies(srv.codex_home, image.thread_id)
        assert (left == []) if remove else len(left) == 2
    rollouts = list(srv.codex_home.glob("sessions/*/*/*/rollout-*.jsonl"))
    assert (rollouts == []) if remove else len(rollouts) == 3  # the failed run's rollout too


def test_finished_operations_go_with_their_images(store):
    def op(request_id, state, ended_ms):
        store.metadata.add_operation(
            OperationRecord(
                request_id=request_id,
                key_name="",
                surface="grpc",
                state=state,
                request=b"",
                webhook_url="",
                created_unix_ms=ended_ms - 5,
                ended_unix_ms=ended_ms,
            )
        )

    _, fresh_image = save(store, NOW - 10_001), save(store, NOW)
    op("old-done", "succeeded", NOW - 10_001)
    op("old-running", "running", 0)
    op("fresh-done", "failed", NOW)
    Retention(store, Metrics(), max_age_s=10, max_bytes=0).sweep(NOW)
    assert kept(store) == {fresh_image.id}
    left = {o.request_id for o in store.metadata.list_operations(None, (), None, 10)}
    assert left == {"old-running", "fresh-done"}, "a running one stays whatever its age"
