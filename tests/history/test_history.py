"""The history API on a real SQLite file: it survives restarts, pages every
row exactly once while requests land, filters, and records failed, cancelled
and refused requests too."""

from __future__ import annotations

import json
import sqlite3
import threading
import time

import grpc
import pytest
from codeximage.v1 import image_service_pb2 as pb
from google.protobuf import timestamp_pb2

from tests.support import databases
from tests.support.grpc_helpers import error_details
from tests.support.server_proc import start_server

from .conftest import all_pages, generate


@pytest.fixture(scope="module")
def server(tmp_path_factory, backend):  # one server per backend
    with start_server(tmp_path_factory.mktemp("history"), args=["--kill-grace-ms", "500"]) as srv:
        yield srv


def test_history_survives_a_restart(tmp_path, backend):
    dirs = dict(state_dir=tmp_path / "state", output_dir=tmp_path / "out")
    with start_server(tmp_path, **dirs) as srv:
        stub = srv.stub()
        ok, err = generate(stub, "a lighthouse at dusk", count=2, request_id="keep-ok")
        assert err is None and len(ok) == 2
        _, err = generate(stub, "x [[fake mode=fail]]", request_id="keep-failed")
        assert err is not None
        _, err = generate(stub, "x", request_id="keep-refused", count=9)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        before = stub.GetRequest(pb.GetRequestRequest(request_id="keep-ok"))
    assert (tmp_path / "state" / "index.sqlite3").is_file() == (backend == "sqlite")
    with start_server(tmp_path, **dirs) as srv:
        stub = srv.stub()
        after = stub.GetRequest(pb.GetRequestRequest(request_id="keep-ok"))
        assert after == before
        record = after.request
        assert (
            record.status == "completed"
            and record.prompt == "a lighthouse at dusk"
            and record.count == 2
        )
        assert (
            record.surface == "grpc"
            and record.accounts == ["default"]
            and record.error_reason == ""
        )
        assert record.duration_ms >= record.codex_ms > 0 and record.end_time.ToMilliseconds() > 0
        assert (
            sorted(record.image_ids)
            == sorted(i.id for i in ok)
            == sorted(i.id for i in after.images)
        )
        assert [i.index for i in after.images] == [0, 1] and all(
            i.account == "default" for i in after.images
        )
        failed = stub.GetRequest(pb.GetRequestRequest(request_id="keep-failed")).request
        assert (
            failed.status == "failed"
            and failed.error_reason == "CODEX_EXEC_FAILED"
            and not failed.image_ids
        )
        refused = stub.GetRequest(pb.GetRequestRequest(request_id="keep-refused")).request
        assert (
            refused.status == "refused"
            and refused.error_reason == "INVALID_COUNT"
            and refused.count == 9
        )
        listed = all_pages(stub.ListRequests, pb.ListRequestsRequest(), field="requests")
        assert [r.request_id for r in listed] == ["keep-refused", "keep-failed", "keep-ok"]


def test_a_request_running_when_the_server_died_ends_failed(tmp_path):
    dirs = dict(state_dir=tmp_path / "state", output_dir=tmp_path / "out")
    srv_cm = start_server(tmp_path, **dirs)
    srv = srv_cm.__enter__()
    try:
        call = srv.stub().Generate(
            pb.GenerateRequest(prompt="x [[fake delay=60]]", request_id="cut-off"), timeout=60
        )
        deadline = time.monotonic() + 20
        while not srv.runs_of("cut-off"):
            assert time.monotonic() < deadline, "codex never started"
            time.sleep(0.05)
        running = srv.stub().GetRequest(pb.GetRequestRequest(request_id="cut-off")).request
        assert running.status == "running" and not running.HasField("end_time")
        srv.kill_hard()
        call.cancel()
    finally:
        srv_cm.__exit__(None, None, None)
    with start_server(tmp_path, **dirs) as again:
        record = again.stub().GetRequest(pb.GetRequestRequest(request_id="cut-off")).request
        assert record.status == "failed" and record.error_reason == "SERVER_STOPPED"


def test_cancelled_requests_are_in_the_history(stub, server):
    call = stub.Generate(
        pb.GenerateRequest(prompt="x [[fake delay=60]]", request_id="hist-cancel"), timeout=60
    )
    deadline = time.monotonic() + 20
    while not server.runs_of("hist-cancel"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    call.cancel()
    deadline = time.monotonic() + 20
    while (
        record := stub.GetRequest(pb.GetRequestRequest(request_id="hist-cancel")).request
    ).status == "running":
        assert time.monotonic() < deadline, "the cancelled request was never recorded as ended"
        time.sleep(0.05)
    assert record.status == "cancelled" and record.error_reason == "REQUEST_CANCELED"


def test_paging_returns_every_image_exactly_once_while_new_ones_land(stub):
    for i in range(6):
        _, err = generate(stub, f"seed {i}", count=4, request_id=f"page-seed-{i}")
        assert err is None
    before = {i.id for i in all_pages(stub.ListImages, pb.ListImagesRequest(page_size=50))}
    assert len(before) >= 24
    stop = threading.Event()
    landed = []

    def keep_generating():
        n = 0
        while not stop.is_set():
            images, _ = generate(stub, f"landing {n}", count=2, request_id=f"page-new-{n}")
            landed.extend(i.id for i in images)
            n += 1

    writer = threading.Thread(target=keep_generating)
    writer.start()
    try:
        seen = []
        request = pb.ListImagesRequest(page_size=5)
        while True:
            page = stub.ListImages(request, timeout=30)
            seen.extend(i.id for i in page.images)
            time.sleep(0.1)  # let new images land between pages
            if not page.next_page_token:
                break
            request.page_token = page.next_page_token
    finally:
        stop.set()
        writer.join()
    assert landed, "no image landed while paging: the test proved nothing"
    assert len(seen) == len(set(seen)), "an image came twice"
    assert before <= set(seen), "an image that existed before paging began was skipped"


def test_each_filter(stub):
    start = timestamp_pb2.Timestamp()
    start.FromMilliseconds(int(time.time() * 1000) - 1)
    generate(stub, "Blue WHALE in the deep", request_id="filter-whale")
    generate(stub, "a red fox", request_id="filter-fox")
    middle = timestamp_pb2.Timestamp()
    middle.FromMilliseconds(int(time.time() * 1000))
    time.sleep(0.01)
    generate(stub, "x [[fake mode=fail]] whale", request_id="filter-failed")

    def images(**kw):
        return [i.request_id for i in all_pages(stub.ListImages, pb.ListImagesRequest(**kw))]

    def requests(**kw):
        return [
            r.request_id
            for r in all_pages(stub.ListRequests, pb.ListRequestsRequest(**kw), field="requests")
        ]

    assert images(prompt_contains="blue whale") == ["filter-whale"]  # case-insensitive
    assert images(prompt_contains="%") == [] and images(prompt_contains="_") == []  # no wildcards
    assert images(request_id="filter-fox") == ["filter-fox"]
    assert images(start_time=start, end_time=middle) == ["filter-fox", "filter-whale"]
    assert requests(start_time=middle) == ["filter-failed"]
    assert requests(status="failed", start_time=start) == ["filter-failed"]
    assert requests(prompt_contains="WHALE") == ["filter-failed", "filter-whale"]
    assert requests(request_id="filter-fox", status="completed") == ["filter-fox"]
    assert requests(key_name="nobody") == [] and images(key_name="nobody") == []
    with pytest.raises(grpc.RpcError) as exc:
        stub.ListRequests(pb.ListRequestsRequest(status="exploded"))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(exc.value)[1][0][:2] == ("status", "INVALID_STATUS")


@pytest.mark.parametrize("token", ["garbage!", "eyJ0IjoxfQ"])
def test_a_bad_page_token_is_invalid(stub, token):
    with pytest.raises(grpc.RpcError) as exc:
        stub.ListImages(pb.ListImagesRequest(page_token=token))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(exc.value)[1][0][:2] == ("page_token", "INVALID_PAGE_TOKEN")


def test_a_token_is_refused_for_other_filters(stub):
    for i in range(3):
        generate(stub, f"token filters {i}", request_id=f"token-{i}")
    page = stub.ListImages(pb.ListImagesRequest(page_size=1, prompt_contains="token filters"))
    assert page.next_page_token
    with pytest.raises(grpc.RpcError) as exc:
        stub.ListImages(
            pb.ListImagesRequest(
                page_size=1, page_token=page.next_page_token, prompt_contains="fox"
            )
        )
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_delete_removes_bytes_record_and_file_route(stub, server):
    (image,), err = generate(stub, "to be deleted", request_id="delete-me")
    assert err is None
    path = server.output_dir / f"{image.id}.png"
    assert path.is_file()
    stub.DeleteImage(pb.DeleteImageRequest(image_id=image.id))
    assert not path.exists()
    for call in (
        lambda: stub.GetImage(pb.GetImageRequest(image_id=image.id)),
        lambda: list(stub.GetImageFile(pb.GetImageFileRequest(image_id=image.id))),
        lambda: stub.DeleteImage(pb.DeleteImageRequest(image_id=image.id)),
    ):
        with pytest.raises(grpc.RpcError) as exc:
            call()
        assert exc.value.code() == grpc.StatusCode.NOT_FOUND
    assert image.id not in {
        i.id for i in all_pages(stub.ListImages, pb.ListImagesRequest(request_id="delete-me"))
    }
    detail = stub.GetRequest(pb.GetRequestRequest(request_id="delete-me"))
    assert (
        list(detail.request.image_ids) == [image.id] and not detail.images
    )  # history keeps what it made


def test_old_json_records_are_migrated_on_first_start(tmp_path):
    out = tmp_path / "out"
    # Made on SQLite, whose row becomes the old layout's record; then the
    # first start on the backend under test imports it.
    with (
        databases.servers_use(None),
        start_server(tmp_path, state_dir=tmp_path / "state", output_dir=out) as srv,
    ):
        (image,), _ = generate(srv.stub(), "made before the index", request_id="legacy")
    # Put it back in the layout of before: a JSON record beside the file, no index.
    db = sqlite3.connect(tmp_path / "state" / "index.sqlite3")
    row = db.execute("SELECT * FROM images WHERE id = ?", (image.id,)).fetchone()
    columns = [d[0] for d in db.execute("SELECT * FROM images LIMIT 0").description]
    db.close()
    record = dict(zip(columns, row, strict=True))
    record["index"] = record.pop("idx")
    for gone in ("key_name", "account", "request_seq"):
        record.pop(gone)
    (out / f"{image.id}.json").write_text(json.dumps(record))
    with start_server(tmp_path, state_dir=tmp_path / "fresh-state", output_dir=out) as srv:
        got = srv.stub().GetImage(pb.GetImageRequest(image_id=image.id)).image
        assert (got.prompt, got.sha256, got.width) == (image.prompt, image.sha256, image.width)
        assert [i.id for i in srv.stub().ListImages(pb.ListImagesRequest()).images] == [image.id]
    assert not (out / f"{image.id}.json").exists()
