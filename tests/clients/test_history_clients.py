"""History in the Python client and the CLI (list, get, delete) against a
live server with a key."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from codex_image_client import Client, ClientError

from .conftest import API_KEY
from .test_cli import run_cli


@pytest.fixture
def client(server):
    with Client(server.grpc_target, api_key=API_KEY, timeout=20) as c:
        yield c


def make(client, prompt: str, request_id: str, count: int = 1):
    return client.generate(prompt, count=count, request_id=request_id, timeout=60).wait().images


def test_python_client_lists_gets_and_deletes(client):
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    made = make(client, "py history otter", "py-hist", count=3)
    page = client.list_images(page_size=2, prompt_contains="OTTER")
    assert len(page.images) == 2 and page.next_page_token
    every = list(client.iter_images(page_size=1, prompt_contains="otter", start_time=since))
    assert sorted(i.id for i in every) == sorted(i.id for i in made)
    assert [i.id for i in client.iter_images(request_id="py-hist", end_time=since)] == []
    detail = client.get_request("py-hist")
    assert detail.request.status == "completed" and detail.request.key_name == "default"
    assert sorted(detail.request.image_ids) == sorted(i.id for i in made)
    assert [
        r.request_id for r in client.iter_requests(status="completed", request_id="py-hist")
    ] == ["py-hist"]
    client.delete_image(made[0].id)
    with pytest.raises(ClientError) as exc:
        client.delete_image(made[0].id)
    assert exc.value.code.name == "NOT_FOUND"
    assert made[0].id not in {i.id for i in client.iter_images(request_id="py-hist")}
    with pytest.raises(ClientError) as exc:
        client.list_requests(status="nonsense")
    assert exc.value.reason == "INVALID_STATUS"


def test_cli_list_rm_requests_and_request(server, client):
    made = make(client, "cli history badger", "cli-hist", count=2)
    listed = run_cli(server, "list", "--prompt", "badger")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert sorted(r[0] for r in rows) == sorted(i.id for i in made)
    assert all(r[4] == "cli-hist" and r[5] == "cli history badger" for r in rows)
    as_json = run_cli(server, "list", "--request-id", "cli-hist", "--json", "-n", "1")
    assert (
        len(as_json.stdout.splitlines()) == 1
        and json.loads(as_json.stdout)["request_id"] == "cli-hist"
    )
    removed = run_cli(server, "rm", made[0].id, "img_00000000000000000000000000000000")
    assert removed.returncode == 1 and removed.stdout.split() == [made[0].id]
    assert "NOT_FOUND" in removed.stderr and "Traceback" not in removed.stderr
    after = run_cli(server, "list", "--prompt", "badger")
    assert [line.split("\t")[0] for line in after.stdout.splitlines()] == [made[1].id]
    requests = run_cli(server, "requests", "--request-id", "cli-hist", "--status", "completed")
    assert requests.stdout.split("\t")[:1] == ["cli-hist"] and "2 images" in requests.stdout
    detail = run_cli(server, "request", "cli-hist")
    assert detail.returncode == 0 and json.loads(detail.stdout)["request"]["status"] == "completed"
    bad = run_cli(server, "list", "--since", "yesterday")
    assert bad.returncode == 2 and "not an ISO time" in bad.stderr
