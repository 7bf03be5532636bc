"""Detached generations from the Python client and the `codex-image` CLI
(submit, wait, ops, op, cancel), against a live server with a key."""

from __future__ import annotations

import json

import pytest
from codex_image_client import Client, ClientError, operation_metadata, operation_result

from tests.support import procs

from .conftest import API_KEY
from .test_cli import run_cli


@pytest.fixture
def client(server):
    with Client(server.grpc_target, api_key=API_KEY, timeout=30) as c:
        yield c


def test_client_submit_wait_get_list_cancel(server, client):
    op = client.submit("a kite [[fake delay=0.3]]", count=2, request_id="py-op-1")
    assert op.name == "operations/py-op-1" and not op.done
    done = client.wait("py-op-1", timeout=30)
    assert len(operation_result(done).images) == 2
    assert operation_metadata(client.get_operation(op.name)).state == operation_metadata(done).state
    assert "operations/py-op-1" in [o.name for o in client.iter_operations(filter="done = true")]
    slow = client.submit("slow [[fake delay=60 child=1]]", request_id="py-op-slow")
    assert procs.wait_until(lambda: len(server.runs_of("py-op-slow")) == 1, timeout=15)
    runs = server.runs_of("py-op-slow")
    client.cancel(slow.name)
    with pytest.raises(ClientError) as err:
        operation_result(client.wait(slow.name, timeout=20))
    assert err.value.code.name == "CANCELLED"
    assert procs.wait_until(lambda: procs.all_gone(runs), timeout=10)
    with pytest.raises(ClientError) as err:
        client.cancel(slow.name)
    assert err.value.code.name == "FAILED_PRECONDITION" and err.value.reason == "OPERATION_DONE"


def test_client_wait_returns_at_its_timeout(client):
    op = client.submit("slow [[fake delay=30]]", request_id="py-op-timeout")
    assert not client.wait(op.name, timeout=0.5).done
    client.cancel(op.name)


def test_cli_submit_wait_ops_and_op(server, tmp_path):
    proc = run_cli(
        server,
        "submit",
        "a boat [[fake delay=0.2]]",
        "--request-id",
        "cli-op-1",
        "--wait",
        "-o",
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    saved = proc.stdout.split()
    assert len(saved) == 1 and saved[0].startswith(str(tmp_path)) and saved[0].endswith(".png")
    listed = run_cli(server, "ops", "--done")
    assert (
        listed.returncode == 0
        and "operations/cli-op-1\t" in listed.stdout
        and "succeeded" in listed.stdout
    )
    shown = run_cli(server, "op", "cli-op-1")
    assert shown.returncode == 0 and json.loads(shown.stdout)["done"] is True
    name = run_cli(server, "submit", "later [[fake delay=30]]", "--request-id", "cli-op-2")
    assert name.returncode == 0 and name.stdout.strip() == "operations/cli-op-2"
    cancelled = run_cli(server, "op", "operations/cli-op-2", "--cancel")
    assert cancelled.returncode == 0, cancelled.stderr
    again = run_cli(server, "op", "cli-op-2", "--cancel")
    assert again.returncode == 1 and "OPERATION_DONE" in again.stderr
    bad = run_cli(server, "op", "a/b")
    assert bad.returncode == 1 and "name" in bad.stderr
