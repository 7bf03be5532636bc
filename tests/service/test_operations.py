"""Detached generations over gRPC: SubmitGeneration and the standard
google.longrunning.Operations service, on a real server with the fake codex,
codex runs counted and checked by pid."""

from __future__ import annotations

import time

import grpc
import pytest
from codeximage.v1 import image_service_pb2 as pb
from google.longrunning import operations_pb2_grpc, operations_proto_pb2 as lro
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2
from grpc_status import rpc_status

from tests.support import procs
from tests.support.server_proc import start_server


def ops(srv, channel=None):
    return operations_pb2_grpc.OperationsStub(channel or srv.channel())


def wait(srv, name, timeout_s=30.0):
    return ops(srv).WaitOperation(
        lro.WaitOperationRequest(name=name, timeout=duration_pb2.Duration(seconds=int(timeout_s))),
        timeout=timeout_s + 10,
    )


def metadata(op):
    meta = pb.GenerationMetadata()
    assert op.metadata.Unpack(meta)
    return meta


def result(op):
    out = pb.GenerationResult()
    assert op.response.Unpack(out)
    return out


def bad_fields(err: grpc.RpcError) -> list[str]:
    status = rpc_status.from_call(err)
    fields = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields += [v.field for v in bad.field_violations]
    return fields


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with start_server(tmp_path_factory.mktemp("ops"), args=["--kill-grace-ms", "500"]) as srv:
        yield srv


def test_submit_answers_at_once_and_wait_returns_the_images(server):
    started = time.monotonic()
    op = server.stub().SubmitGeneration(
        pb.GenerateRequest(prompt="a fox [[fake delay=3]]", count=2, request_id="ops-wait"),
        timeout=10,
    )
    assert time.monotonic() - started < 2.0
    assert op.name == "operations/ops-wait" and not op.done
    assert metadata(op).state in (
        pb.GenerationMetadata.STATE_QUEUED,
        pb.GenerationMetadata.STATE_RUNNING,
    )
    done = wait(server, op.name)
    assert done.done and done.WhichOneof("result") == "response", done
    images = result(done).images
    assert len(images) == 2 and all(i.id.startswith("img_") and i.width > 0 for i in images)
    assert result(done).summary.request_id == "ops-wait"
    meta = metadata(done)
    assert meta.state == pb.GenerationMetadata.STATE_SUCCEEDED and meta.attempts == 1
    assert [c.state for c in meta.candidates] == ["finished", "finished"] or not meta.candidates
    # The images are the store's: GetImage serves them.
    assert (
        server.stub().GetImage(pb.GetImageRequest(image_id=images[0].id)).image.request_id
        == "ops-wait"
    )


def test_the_same_request_id_twice_makes_one_generation(server):
    request = pb.GenerateRequest(prompt="twice [[fake delay=1]]", request_id="ops-twice")
    first = server.stub().SubmitGeneration(request)
    second = server.stub().SubmitGeneration(request)
    assert first.name == second.name == "operations/ops-twice"
    assert wait(server, first.name).done
    again = server.stub().SubmitGeneration(request)
    assert again.done and result(again).images
    assert len(server.runs_of("ops-twice")) == 1, "one codex run, whatever the answers said"


def test_the_same_id_with_other_parameters_is_already_exists_naming_the_field(server):
    server.stub().SubmitGeneration(
        pb.GenerateRequest(prompt="one [[fake delay=0.2]]", request_id="ops-diff")
    )
    with pytest.raises(grpc.RpcError) as err:
        server.stub().SubmitGeneration(
            pb.GenerateRequest(prompt="one [[fake delay=0.2]]", count=2, request_id="ops-diff")
        )
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert bad_fields(err.value) == ["count"]


def test_cancel_kills_every_codex_and_ends_cancelled(server):
    op = server.stub().SubmitGeneration(
        pb.GenerateRequest(
            prompt="long [[fake delay=60 child=1]]", count=2, request_id="ops-cancel"
        )
    )
    assert procs.wait_until(lambda: len(server.runs_of("ops-cancel")) == 2, timeout=15)
    runs = server.runs_of("ops-cancel")
    ops(server).CancelOperation(lro.CancelOperationRequest(name=op.name))
    done = wait(server, op.name, 20)
    assert done.done and done.error.code == code_pb2.CANCELLED
    assert metadata(done).state == pb.GenerationMetadata.STATE_CANCELLED
    assert procs.wait_until(lambda: procs.all_gone(runs), timeout=10)
    # Cancel of a done operation: a clear status, and it stays as it was.
    with pytest.raises(grpc.RpcError) as err:
        ops(server).CancelOperation(lro.CancelOperationRequest(name=op.name))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert ops(server).GetOperation(lro.GetOperationRequest(name=op.name)) == done


def test_the_submitting_caller_going_away_does_not_stop_it(server):
    channel = server.channel()
    server.stub(channel).SubmitGeneration(
        pb.GenerateRequest(prompt="left [[fake delay=2]]", request_id="ops-left")
    )
    channel.close()
    done = wait(server, "operations/ops-left")
    assert done.done and len(result(done).images) == 1


def test_bad_names_and_timeouts_are_refused_and_change_nothing(server):
    stub = ops(server)
    with pytest.raises(grpc.RpcError) as err:
        stub.GetOperation(lro.GetOperationRequest(name="operations/no-such-op"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    for name in ("operations/a/b", "operations/" + "x" * 10_000, "images/x", ""):
        with pytest.raises(grpc.RpcError) as err:
            stub.GetOperation(lro.GetOperationRequest(name=name))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_fields(err.value) == [
            "name"
        ]
    op = server.stub().SubmitGeneration(
        pb.GenerateRequest(prompt="p [[fake delay=0.5]]", request_id="ops-neg")
    )
    with pytest.raises(grpc.RpcError) as err:
        stub.WaitOperation(
            lro.WaitOperationRequest(name=op.name, timeout=duration_pb2.Duration(seconds=-1))
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_fields(err.value) == [
        "timeout"
    ]
    with pytest.raises(grpc.RpcError) as err:
        stub.DeleteOperation(lro.DeleteOperationRequest(name=op.name))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert wait(server, op.name).done
    stub.DeleteOperation(lro.DeleteOperationRequest(name=op.name))
    with pytest.raises(grpc.RpcError) as err:
        stub.GetOperation(lro.GetOperationRequest(name=op.name))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_wait_honours_its_timeout(server):
    op = server.stub().SubmitGeneration(
        pb.GenerateRequest(prompt="slow [[fake delay=30]]", request_id="ops-slow")
    )
    started = time.monotonic()
    answer = ops(server).WaitOperation(
        lro.WaitOperationRequest(name=op.name, timeout=duration_pb2.Duration(nanos=500_000_000))
    )
    assert not answer.done and 0.4 < time.monotonic() - started < 3
    ops(server).CancelOperation(lro.CancelOperationRequest(name=op.name))
    assert wait(server, op.name).done


def test_list_pages_and_filters(server):
    for i in range(3):
        server.stub().SubmitGeneration(
            pb.GenerateRequest(prompt="l [[fake delay=0.1]]", request_id=f"ops-list-{i}")
        )
    for i in range(3):
        wait(server, f"operations/ops-list-{i}")
    stub, names, token = ops(server), [], ""
    while True:
        page = stub.ListOperations(
            lro.ListOperationsRequest(page_size=2, page_token=token, filter="done = true")
        )
        names += [o.name for o in page.operations]
        assert all(o.done for o in page.operations)
        token = page.next_page_token
        if not token:
            break
    assert {f"operations/ops-list-{i}" for i in range(3)} <= set(names)
    assert len(names) == len(set(names))
    with pytest.raises(grpc.RpcError) as err:
        stub.ListOperations(lro.ListOperationsRequest(filter="prompt = x"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_fields(err.value) == [
        "filter"
    ]


def test_after_sigkill_the_queued_one_runs_and_the_running_one_is_retried_once(tmp_path):
    state = tmp_path / "state"
    args = ["--max-concurrent", "1", "--kill-grace-ms", "300"]
    with start_server(tmp_path, state_dir=state, args=args) as first:
        first.stub().SubmitGeneration(
            pb.GenerateRequest(prompt="r [[fake delay=60 child=1]]", request_id="ops-run")
        )
        assert procs.wait_until(lambda: len(first.runs_of("ops-run")) == 1, timeout=15)
        first.stub().SubmitGeneration(
            pb.GenerateRequest(prompt="q [[fake delay=0.2]]", request_id="ops-queued")
        )
        queued = ops(first).GetOperation(lro.GetOperationRequest(name="operations/ops-queued"))
        assert (
            metadata(queued).state == pb.GenerationMetadata.STATE_QUEUED
            and metadata(queued).queue_position == 0
        )
        first.kill_hard()
        procs.kill_leftover_runs(first.fake_runs())
    # The retry must not sleep a minute: the prompt stays, the fake reads the delay from it, so the
    # retried run is cancelled once it is seen running again.
    with start_server(tmp_path, state_dir=state, args=args) as second:
        assert procs.wait_until(lambda: len(second.runs_of("ops-run")) == 1, timeout=15)
        running = ops(second).GetOperation(lro.GetOperationRequest(name="operations/ops-run"))
        assert (
            metadata(running).attempts == 2
            and metadata(running).state == pb.GenerationMetadata.STATE_RUNNING
        )
        ops(second).CancelOperation(lro.CancelOperationRequest(name="operations/ops-run"))
        queued = wait(second, "operations/ops-queued")
        assert queued.done and len(result(queued).images) == 1


def test_generate_with_a_finished_operations_id_answers_from_the_store(server):
    request = pb.GenerateRequest(prompt="stored [[fake delay=0.2]]", request_id="ops-replay")
    done = wait(server, server.stub().SubmitGeneration(request).name)
    stream = list(server.stub().Generate(request))
    assert [m.image.id for m in stream if m.HasField("image")] == [
        i.id for i in result(done).images
    ]
    assert stream[-1].summary.request_id == "ops-replay"
    assert len(server.runs_of("ops-replay")) == 1, "answered from the store: no second codex run"


def test_generate_with_a_running_operations_id_is_already_exists(server):
    request = pb.GenerateRequest(prompt="busy [[fake delay=30]]", request_id="ops-busy")
    op = server.stub().SubmitGeneration(request)
    with pytest.raises(grpc.RpcError) as err:
        list(server.stub().Generate(request))
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS and bad_fields(err.value) == [
        "request_id"
    ]
    ops(server).CancelOperation(lro.CancelOperationRequest(name=op.name))
    assert wait(server, op.name).done


def test_a_clean_stop_hands_the_running_one_back_uncounted(tmp_path):
    state = tmp_path / "state"
    with start_server(tmp_path, state_dir=state, args=["--kill-grace-ms", "300"]) as first:
        first.stub().SubmitGeneration(
            pb.GenerateRequest(prompt="s [[fake delay=60 child=1]]", request_id="ops-stop")
        )
        assert procs.wait_until(lambda: len(first.runs_of("ops-stop")) == 1, timeout=15)
        runs = first.runs_of("ops-stop")
        assert first.stop() == 0
        assert procs.all_gone(runs), "a clean stop leaves no codex behind"
    with start_server(tmp_path, state_dir=state, args=["--kill-grace-ms", "300"]) as second:
        assert procs.wait_until(lambda: len(second.runs_of("ops-stop")) == 1, timeout=15)
        running = ops(second).GetOperation(lro.GetOperationRequest(name="operations/ops-stop"))
        assert metadata(running).attempts == 1, "a clean stop does not count as an attempt"
        ops(second).CancelOperation(lro.CancelOperationRequest(name="operations/ops-stop"))
        assert wait(second, "operations/ops-stop").done


def test_killed_during_its_retry_too_it_fails_retryable(tmp_path):
    state = tmp_path / "state"
    for attempt in (1, 2):
        with start_server(tmp_path, state_dir=state) as srv:
            if attempt == 1:
                srv.stub().SubmitGeneration(
                    pb.GenerateRequest(prompt="d [[fake delay=60 child=1]]", request_id="ops-dies")
                )
            assert procs.wait_until(lambda: len(srv.runs_of("ops-dies")) == 1, timeout=15)
            srv.kill_hard()
            procs.kill_leftover_runs(srv.fake_runs())
    with start_server(tmp_path, state_dir=state) as third:
        done = wait(third, "operations/ops-dies")
        assert done.done and done.error.code == code_pb2.UNAVAILABLE
        assert (
            metadata(done).attempts == 2
            and metadata(done).state == pb.GenerationMetadata.STATE_FAILED
        )
        assert any(d.Is(error_details_pb2.RetryInfo.DESCRIPTOR) for d in done.error.details)
        assert not third.runs_of("ops-dies"), "no third run"
