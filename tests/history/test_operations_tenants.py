"""Detached generations and keys, on both index backends (conftest): a member
sees only its own operations; a key's limits hold for operations as for
Generate (the same admission): at its concurrency limit an operation waits
in the queue, past its daily images it fails with the key's refusal.
Its servers are served in-process (tests/support/inprocess_server.py)."""

from __future__ import annotations

import grpc
import pytest
from codeximage.v1 import image_service_pb2 as pb
from google.longrunning import operations_pb2_grpc, operations_proto_pb2 as lro
from google.protobuf import duration_pb2
from google.rpc import code_pb2

from tests.support.inprocess_server import serve_in_process

from .conftest import all_pages
from .test_keys import add_key, md


@pytest.fixture(scope="module")
def keyed(tmp_path_factory, backend):
    tmp = tmp_path_factory.mktemp("ops-tenants")
    keys_file = tmp / "keys.json"
    keys = {
        "alice": add_key(keys_file, "alice", "--max-concurrent", "1"),
        "bob": add_key(keys_file, "bob", "--images-per-day", "1"),
    }
    with serve_in_process(tmp, args=["--keys-file", str(keys_file)]) as srv:
        yield srv, keys


def submit(srv, key, request_id, delay=0.5):
    return srv.stub().SubmitGeneration(
        pb.GenerateRequest(prompt=f"t [[fake delay={delay}]]", request_id=request_id),
        metadata=md(key),
    )


def wait(srv, key, name):
    return operations_pb2_grpc.OperationsStub(srv.channel()).WaitOperation(
        lro.WaitOperationRequest(name=name, timeout=duration_pb2.Duration(seconds=40)),
        metadata=md(key),
        timeout=60,
    )


def test_at_its_concurrency_limit_an_operation_waits_its_turn(keyed):
    srv, keys = keyed
    first, second = (
        submit(srv, keys["alice"], "alice-op-1", 1.5),
        submit(srv, keys["alice"], "alice-op-2", 0.2),
    )
    done = [wait(srv, keys["alice"], op.name) for op in (first, second)]
    assert all(d.done and d.WhichOneof("result") == "response" for d in done), done
    # Refused (not failed) while the first ran: it went back to the queue and ran once after.
    assert len(srv.runs_of("alice-op-1")) == len(srv.runs_of("alice-op-2")) == 1
    assert any(
        r["event"] == "generate.refused"
        and r.get("request_id") == "alice-op-2"
        and r.get("reason") == "KEY_CONCURRENCY_LIMIT"
        for r in srv.log_records()
    ), "it was put back"
    # Waiting for the key's slot is not an outcome: the history has the one run, no refusal per
    # retry.
    rows = all_pages(
        srv.stub().ListRequests,
        pb.ListRequestsRequest(request_id="alice-op-2"),
        md(keys["alice"]),
        "requests",
    )
    assert [r.status for r in rows] == ["completed"]


def test_past_its_daily_images_an_operation_fails_with_the_keys_refusal(keyed):
    srv, keys = keyed
    assert (
        wait(srv, keys["bob"], submit(srv, keys["bob"], "bob-op-1").name).WhichOneof("result")
        == "response"
    )
    refused = wait(srv, keys["bob"], submit(srv, keys["bob"], "bob-op-2").name)
    assert refused.done and refused.error.code == code_pb2.RESOURCE_EXHAUSTED
    assert not srv.runs_of("bob-op-2"), "no codex run for a refused one"


def test_a_member_sees_only_its_own_operations(keyed):
    srv, keys = keyed
    stub = operations_pb2_grpc.OperationsStub(srv.channel())
    names = [
        o.name
        for o in stub.ListOperations(
            lro.ListOperationsRequest(), metadata=md(keys["bob"])
        ).operations
    ]
    assert names and all(n.startswith("operations/bob-") for n in names)
    with pytest.raises(grpc.RpcError) as err:
        stub.GetOperation(
            lro.GetOperationRequest(name="operations/alice-op-1"), metadata=md(keys["bob"])
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        stub.CancelOperation(
            lro.CancelOperationRequest(name="operations/alice-op-1"), metadata=md(keys["bob"])
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:  # another key's id is taken, and says nothing of it
        submit(srv, keys["bob"], "alice-op-1")
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
