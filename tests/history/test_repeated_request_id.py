"""A request id repeated (AIP-155), on both index backends (conftest): Generate
with the id of this key's finished request, made on any surface, is answered
from the store (the same images, the same bytes, no codex run, the key's usage
unchanged); other parameters are ALREADY_EXISTS naming the field; one still
running runs again (a retry of a cut stream), a queued or running
operation's id is ALREADY_EXISTS naming request_id; a failed one runs anew. Codex
runs are counted by the fake's own records, usage by the key's count."""

from __future__ import annotations

import json

import grpc
import pytest
from codeximage.v1 import image_service_pb2 as pb
from google.longrunning import operations_pb2_grpc, operations_proto_pb2 as lro
from google.protobuf import duration_pb2

from tests.shim.client import request
from tests.support import procs
from tests.support.grpc_helpers import error_details
from tests.support.server_proc import start_server

from .conftest import all_pages
from .test_keys import add_key, md


@pytest.fixture(scope="module")
def keyed(tmp_path_factory, backend):
    tmp = tmp_path_factory.mktemp("repeat")
    keys_file = tmp / "keys.json"
    key = add_key(keys_file, "rep", "--images-per-day", "100")
    with start_server(
        tmp, args=["--keys-file", str(keys_file), "--kill-grace-ms", "300"], http=True
    ) as srv:
        yield srv, key


def stream(srv, key, req) -> list[pb.GenerateResponse]:
    return list(srv.stub().Generate(req, metadata=md(key), timeout=60))


def images_today(srv, key) -> int:
    """The key's usage as its limits count it (any of its requests reports it)."""
    return (
        srv.stub()
        .GetRequest(pb.GetRequestRequest(request_id="rep-grpc"), metadata=md(key))
        .key_usage.images_today
    )


def file_bytes(srv, key, image_id: str) -> bytes:
    reply = request(
        srv.http_base,
        "GET",
        f"/v1/images/{image_id}/file",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert reply.status == 200
    return reply.body


def rows_of(srv, key, request_id: str) -> list:
    return all_pages(
        srv.stub().ListRequests, pb.ListRequestsRequest(request_id=request_id), md(key), "requests"
    )


def post(srv, key, body: dict):
    return request(
        srv.http_base,
        "POST",
        "/v1/images/generate",
        body,
        headers={"Authorization": f"Bearer {key}"},
    )


def test_generate_again_over_grpc_answers_from_the_store(keyed):
    srv, key = keyed
    req = pb.GenerateRequest(prompt="a heron [[fake delay=0.2]]", count=2, request_id="rep-grpc")
    first = stream(srv, key, req)
    used = images_today(srv, key)
    again = stream(srv, key, req)
    ids = [m.image.id for m in first if m.HasField("image")]
    assert len(ids) == 2 and [m.image.id for m in again if m.HasField("image")] == ids
    assert again[-1].summary.image_ids == first[-1].summary.image_ids == ids
    assert again[-1].summary.request_id == "rep-grpc"
    assert [file_bytes(srv, key, i) for i in ids] == [
        file_bytes(srv, key, m.image.id) for m in first if m.HasField("image")
    ]
    assert len(srv.runs_of("rep-grpc")) == 2, (
        "two candidates the first time, no codex run the second"
    )
    assert images_today(srv, key) == used, "no quota spent"
    assert len(rows_of(srv, key, "rep-grpc")) == 1, "one request in the history"


def test_any_surface_repeats_it_over_v1(keyed):
    srv, key = keyed
    body = {"prompt": "an otter [[fake delay=0.2]]", "request_id": "rep-http"}
    first = post(srv, key, body)
    assert first.status == 200, first.body
    used = images_today(srv, key)
    again = post(srv, key, body)
    assert again.status == 200, again.body
    assert [d["id"] for d in again.json()["data"]] == [d["id"] for d in first.json()["data"]]
    assert again.json()["id"] == "rep-http"
    assert len(srv.runs_of("rep-http")) == 1
    # The gRPC request of the test above, repeated over /v1 (n is count there).
    grpc_made = post(
        srv, key, {"prompt": "a heron [[fake delay=0.2]]", "n": 2, "request_id": "rep-grpc"}
    )
    assert grpc_made.status == 200, grpc_made.body
    assert len(grpc_made.json()["data"]) == 2 and len(srv.runs_of("rep-grpc")) == 2
    assert images_today(srv, key) == used


def test_the_same_id_with_other_parameters_is_already_exists_naming_the_field(keyed):
    srv, key = keyed
    stream(srv, key, pb.GenerateRequest(prompt="a wren [[fake delay=0.1]]", request_id="rep-diff"))
    with pytest.raises(grpc.RpcError) as err:
        stream(
            srv,
            key,
            pb.GenerateRequest(
                prompt="a wren [[fake delay=0.1]]", request_id="rep-diff", quality="high"
            ),
        )
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    info, bad = error_details(err.value)
    assert info.reason == "REQUEST_ID_REUSED" and [v[0] for v in bad] == ["quality"]
    over_http = post(srv, key, {"prompt": "another wren", "request_id": "rep-diff"})
    assert over_http.status == 409 and over_http.json()["error"]["code"] == "request_id_reused"
    assert len(srv.runs_of("rep-diff")) == 1


def test_a_repeat_while_it_runs_runs_too_and_an_operations_id_is_request_running(keyed):
    """A Generate's stream is its caller's: a repeat while it runs is a retry
    of a cut stream, and runs (refusing it would fail the retry). An
    operation runs whoever waits: its id while queued or running is taken."""
    srv, key = keyed
    req = pb.GenerateRequest(prompt="a slow crane [[fake delay=60]]", request_id="rep-busy")
    channels = [srv.channel(), srv.channel()]
    first = srv.stub(channels[0]).Generate(req, metadata=md(key), timeout=90)
    assert procs.wait_until(lambda: len(srv.runs_of("rep-busy")) == 1, timeout=15)
    second = srv.stub(channels[1]).Generate(req, metadata=md(key), timeout=90)
    assert procs.wait_until(lambda: len(srv.runs_of("rep-busy")) == 2, timeout=15)
    runs = srv.runs_of("rep-busy")
    first.cancel()
    second.cancel()
    assert procs.wait_until(lambda: procs.all_gone(runs), timeout=15)
    op_request = pb.GenerateRequest(
        prompt="a slow stork [[fake delay=60]]", request_id="rep-op-busy"
    )
    op = srv.stub().SubmitGeneration(op_request, metadata=md(key))
    with pytest.raises(grpc.RpcError) as err:
        stream(srv, key, op_request)
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    info, bad = error_details(err.value)
    assert info.reason == "REQUEST_RUNNING" and [v[0] for v in bad] == ["request_id"]
    operations_pb2_grpc.OperationsStub(srv.channel()).CancelOperation(
        lro.CancelOperationRequest(name=op.name), metadata=md(key)
    )
    for channel in channels:
        channel.close()


def test_a_failed_one_runs_anew(keyed):
    srv, key = keyed
    settings = srv.codex_home / "fake_codex.json"
    req = pb.GenerateRequest(prompt="a stork [[fake delay=0.1]]", request_id="rep-failed")
    settings.write_text(json.dumps({"mode": "fail"}))
    try:
        with pytest.raises(grpc.RpcError):
            stream(srv, key, req)
    finally:
        settings.unlink()
    assert rows_of(srv, key, "rep-failed")[0].status == "failed"
    assert [m for m in stream(srv, key, req) if m.HasField("image")]
    assert len(srv.runs_of("rep-failed")) == 2
    assert [r.status for r in rows_of(srv, key, "rep-failed")] == ["completed", "failed"]


def test_an_operation_of_a_finished_requests_id_is_its_answer(keyed):
    srv, key = keyed
    req = pb.GenerateRequest(prompt="a kite [[fake delay=0.1]]", request_id="rep-op")
    made = [m.image.id for m in stream(srv, key, req) if m.HasField("image")]
    op = srv.stub().SubmitGeneration(req, metadata=md(key))
    done = operations_pb2_grpc.OperationsStub(srv.channel()).WaitOperation(
        lro.WaitOperationRequest(name=op.name, timeout=duration_pb2.Duration(seconds=30)),
        metadata=md(key),
        timeout=40,
    )
    result = pb.GenerationResult()
    assert done.done and done.response.Unpack(result)
    assert [i.id for i in result.images] == made
    assert len(srv.runs_of("rep-op")) == 1
