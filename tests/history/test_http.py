"""The history over the HTTP shim (same RPCs, proto JSON), and /metrics
scraped and parsed with prometheus-client's own parser.
Its servers are served in-process (tests/support/inprocess_server.py)."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.shim.client import request
from tests.support.inprocess_server import serve_in_process

from .conftest import generate


@pytest.fixture(scope="module")
def server(tmp_path_factory, backend):  # one server per backend
    with serve_in_process(tmp_path_factory.mktemp("history-http"), http=True) as srv:
        yield srv


def samples(text: str) -> dict:
    """{(name, frozenset(labels)): value} of every sample."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def scrape(base: str, headers=None) -> dict:
    reply = request(base, "GET", "/metrics", headers=headers)
    assert reply.status == 200, reply.body[:300]
    assert reply.header("Content-Type").startswith("text/plain")
    return samples(reply.body.decode())


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def test_list_get_and_delete_over_http(server):
    base = server.http_base
    made = request(
        base,
        "POST",
        "/v1/images/generate",
        {"prompt": "an HTTP heron", "n": 2, "request_id": "http-heron"},
    ).json()
    ids = [d["id"] for d in made["data"]]
    page = request(base, "GET", "/v1/images?prompt_contains=heron&page_size=1").json()
    assert len(page["images"]) == 1 and page["next_page_token"]
    rest = request(
        base,
        "GET",
        f"/v1/images?prompt_contains=heron&page_size=1&page_token={page['next_page_token']}",
    ).json()
    assert (
        sorted([page["images"][0]["id"], rest["images"][0]["id"]]) == sorted(ids)
        and not rest["next_page_token"]
    )
    detail = request(base, "GET", "/v1/requests/http-heron").json()
    assert detail["request"]["status"] == "completed" and detail["request"]["surface"] == "http"
    assert sorted(i["id"] for i in detail["images"]) == sorted(ids)
    listed = request(base, "GET", "/v1/requests?status=completed&request_id=http-heron").json()
    assert [r["request_id"] for r in listed["requests"]] == ["http-heron"]
    gone = ids[0]
    reply = request(base, "DELETE", f"/v1/images/{gone}")
    assert reply.status == 200 and reply.json() == {}
    assert not (server.output_dir / f"{gone}.png").exists()
    assert request(base, "GET", f"/v1/images/{gone}/file").status == 404
    assert request(base, "GET", f"/v1/images/{gone}").status == 404
    assert request(base, "DELETE", f"/v1/images/{gone}").status == 404
    bad = request(base, "GET", "/v1/images?page_token=nonsense")
    assert bad.status == 400 and bad.json()["error"]["code"] == "invalid_page_token"
    preflight = request(base, "OPTIONS", f"/v1/images/{ids[1]}")
    assert "DELETE" in preflight.header("Access-Control-Allow-Methods")
    doc = request(base, "GET", "/v1/openapi.json").json()
    assert (
        "delete" in doc["paths"]["/v1/images/{image_id}"] and "get" in doc["paths"]["/v1/requests"]
    )


def test_metrics_move_as_requests_complete(server):
    base = server.http_base
    before = scrape(base)
    request(base, "POST", "/v1/images/generate", {"prompt": "counted over http", "n": 2})
    _, err = generate(server.stub(), "counted over grpc [[fake mode=fail]]")
    assert err is not None
    request(base, "POST", "/v1/images/generate", {"prompt": "", "n": 1})  # refused: no prompt
    after = scrape(base)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("codex_image_requests_total", surface="http", outcome="completed", reason="") == 1
    assert (
        moved(
            "codex_image_requests_total",
            surface="grpc",
            outcome="failed",
            reason="CODEX_EXEC_FAILED",
        )
        == 1
    )
    assert (
        moved(
            "codex_image_requests_total", surface="http", outcome="refused", reason="MISSING_PROMPT"
        )
        == 1
    )
    assert moved("codex_image_images_generated_total") == 2
    assert moved("codex_image_request_seconds_count") == 2
    assert moved("codex_image_codex_run_seconds_count") == 2  # only the successful runs are timed
    assert moved("codex_image_queue_wait_seconds_count") == 2
    assert (
        value(after, "codex_image_images_stored") == value(before, "codex_image_images_stored") + 2
    )
    assert value(after, "codex_image_bytes_stored") > value(before, "codex_image_bytes_stored")
    assert (
        value(after, "codex_image_slots_limit") == 4
        and value(after, "codex_image_slots_in_use") == 0
    )
    assert value(after, "codex_image_queue_depth") == 0


def test_metrics_behind_a_key_when_configured(tmp_path):
    with serve_in_process(
        tmp_path,
        http=True,
        env={"CODEX_IMAGE_SERVER_API_KEY": "metrics-key"},
        args=["--metrics-auth", "always"],
    ) as srv:
        assert request(srv.http_base, "GET", "/metrics").status == 401
        assert (
            request(srv.http_base, "GET", "/metrics", headers={"X-API-Key": "wrong"}).status == 401
        )
        found = scrape(srv.http_base, headers={"Authorization": "Bearer metrics-key"})
        assert ("codex_image_slots_limit", frozenset()) in found
        assert request(srv.http_base, "GET", "/healthz").status == 200  # stays open


def test_metrics_open_on_loopback_by_default_even_with_keys(tmp_path):
    with serve_in_process(tmp_path, http=True, env={"CODEX_IMAGE_SERVER_API_KEY": "k"}) as srv:
        assert ("codex_image_images_stored", frozenset()) in scrape(srv.http_base)
        assert request(srv.http_base, "GET", "/v1/images").status == 401
        assert request(srv.http_base, "GET", "/v1/images", headers={"X-API-Key": "k"}).json() == {
            "images": [],
            "next_page_token": "",
        }
