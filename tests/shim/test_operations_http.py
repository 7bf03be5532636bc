"""Detached generations over the /v1 HTTP shim: POST /v1/images:submit and
the Operations routes (GET/DELETE /v1/operations/{id}, :cancel, :wait,
GET /v1/operations), the same servicer, keys and errors as gRPC."""

from __future__ import annotations

import base64

from tests.shim.client import request
from tests.shim.conftest import KEY
from tests.support import procs
from tests.support.fake_codex import png_bytes

RESULT_TYPE = "type.googleapis.com/codeximage.v1.GenerationResult"


def test_submit_wait_get_list_and_delete_over_http(open_server):
    base = open_server.http_base
    reply = request(
        base,
        "POST",
        "/v1/images:submit",
        {"prompt": "an owl [[fake delay=1]]", "request_id": "http-op-1"},
    )
    assert reply.status == 200, reply.body
    op = reply.json()
    assert op["name"] == "operations/http-op-1" and op["done"] is False
    assert op["metadata"]["@type"] == "type.googleapis.com/codeximage.v1.GenerationMetadata"
    waited = request(base, "POST", "/v1/operations/http-op-1:wait", {"timeout": "30s"})
    assert waited.status == 200, waited.body
    done = waited.json()
    assert done["done"] is True and done["response"]["@type"] == RESULT_TYPE
    assert len(done["response"]["images"]) == 1
    assert request(base, "GET", "/v1/operations/http-op-1").json() == done
    listed = request(base, "GET", "/v1/operations?filter=done%20%3D%20true&page_size=10").json()
    assert "operations/http-op-1" in [o["name"] for o in listed["operations"]]
    assert request(base, "DELETE", "/v1/operations/http-op-1").status == 200
    assert request(base, "GET", "/v1/operations/http-op-1").status == 404


def test_cancel_over_http_kills_the_codex_runs(open_server):
    base = open_server.http_base
    assert (
        request(
            base,
            "POST",
            "/v1/images:submit",
            {"prompt": "x [[fake delay=60 child=1]]", "request_id": "http-op-cancel"},
        ).status
        == 200
    )
    assert procs.wait_until(lambda: len(open_server.runs_of("http-op-cancel")) == 1, timeout=15)
    runs = open_server.runs_of("http-op-cancel")
    assert request(base, "POST", "/v1/operations/http-op-cancel:cancel", {}).status == 200
    done = request(base, "POST", "/v1/operations/http-op-cancel:wait", {"timeout": "20s"}).json()
    assert done["done"] and done["error"]["code"] == 1  # google.rpc.Code CANCELLED
    assert procs.wait_until(lambda: procs.all_gone(runs), timeout=10)
    again = request(base, "POST", "/v1/operations/http-op-cancel:cancel", {})
    assert again.status == 400 and again.json()["error"]["code"] == "operation_done"


def test_bad_input_over_http_is_a_clear_4xx(open_server):
    base = open_server.http_base
    assert request(base, "GET", "/v1/operations/no-such").status == 404
    assert (
        request(base, "GET", "/v1/operations/a/b").status == 404
    )  # no such route: names have no slash
    long = request(base, "GET", "/v1/operations/" + "x" * 10_000)
    assert long.status in (400, 414, 431), long.status
    request(
        base,
        "POST",
        "/v1/images:submit",
        {"prompt": "n [[fake delay=0.2]]", "request_id": "http-op-neg"},
    )
    neg = request(base, "POST", "/v1/operations/http-op-neg:wait", {"timeout": "-1s"})
    assert neg.status == 400 and neg.json()["error"]["code"] == "invalid_timeout"
    refused = request(
        base, "POST", "/v1/images:submit", {"prompt": "", "request_id": "http-op-empty"}
    )
    assert refused.status == 400
    assert request(base, "GET", "/v1/operations/http-op-empty").status == 404, (
        "a refused submit queues nothing"
    )


def test_operations_need_the_key(keyed_server):
    base = keyed_server.http_base
    assert request(base, "GET", "/v1/operations").status == 401
    assert request(base, "POST", "/v1/images:submit", {"prompt": "k"}).status == 401
    ok = request(base, "GET", "/v1/operations", headers={"X-API-Key": KEY})
    assert ok.status == 200, ok.body


def test_metrics_count_queued_and_running_operations(open_server):
    base = open_server.http_base
    request(
        base,
        "POST",
        "/v1/images:submit",
        {"prompt": "m [[fake delay=30]]", "request_id": "http-op-metrics"},
    )
    assert procs.wait_until(lambda: len(open_server.runs_of("http-op-metrics")) == 1, timeout=15)
    text = request(base, "GET", "/metrics").body.decode()
    running = [
        line for line in text.splitlines() if line.startswith("codex_image_operations_running ")
    ]
    assert running and float(running[0].split()[1]) >= 1
    assert any(line.startswith("codex_image_operations_queued ") for line in text.splitlines())
    request(base, "POST", "/v1/operations/http-op-metrics:cancel", {})
    request(base, "POST", "/v1/operations/http-op-metrics:wait", {"timeout": "20s"})


def test_submit_with_a_reference_over_http(open_server):
    base = open_server.http_base
    ref = base64.b64encode(png_bytes(32, 32, 3)).decode()
    reply = request(
        base,
        "POST",
        "/v1/images:submit",
        {
            "prompt": "like this [[fake delay=0.1]]",
            "request_id": "http-op-ref",
            "references": [{"image": ref, "label": "style"}],
        },
    )
    assert reply.status == 200, reply.body
    done = request(base, "POST", "/v1/operations/http-op-ref:wait", {"timeout": "30s"}).json()
    image = done["response"]["images"][0]
    assert [r["label"] for r in image["references"]] == ["style"] and image["references"][0][
        "usage"
    ] == "original"
