"""NDJSON streaming: the gRPC stream's events as they happen, grpc-gateway style.
Served in-process (tests/support/inprocess_server.py)."""

from __future__ import annotations

import http.client
import json
import time

IN_PROCESS = True  # its servers: see conftest.py

GENERATE = "/v1/images/generate"


def open_stream(srv, body: dict, path: str = GENERATE, accept: str = "application/x-ndjson"):
    conn = http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=60)
    conn.request(
        "POST",
        path,
        body=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Accept": accept},
    )
    return conn, conn.getresponse()


def test_progress_arrives_before_the_first_image(open_server):
    started = time.monotonic()
    conn, resp = open_stream(open_server, {"prompt": "slow [[fake delay=1.5]]", "count": 2})
    try:
        assert resp.status == 200
        assert resp.getheader("Content-Type") == "application/x-ndjson"
        first = json.loads(resp.readline())
        first_at = time.monotonic() - started
        assert "progress" in first["result"]
        assert first_at < 1.2, f"first line took {first_at:.2f}s: not streamed as it happened"
        lines = [first] + [json.loads(line) for line in resp if line.strip()]
    finally:
        conn.close()
    kinds = [next(iter(line["result"])) for line in lines]
    assert kinds.index("progress") < kinds.index("image")
    assert kinds.count("image") == 2 and kinds[-1] == "summary"
    stages = [line["result"]["progress"]["stage"] for line in lines if "progress" in line["result"]]
    assert "STAGE_CANDIDATE_STARTED" in stages
    summary = lines[-1]["result"]["summary"]
    images = [line["result"]["image"] for line in lines if "image" in line["result"]]
    assert sorted(summary["image_ids"]) == sorted(img["id"] for img in images)
    assert all(img["file_path"] == f"/v1/images/{img['id']}/file" for img in images)


def test_stream_query_parameter(open_server):
    conn, resp = open_stream(
        open_server, {"prompt": "x"}, path=GENERATE + "?stream=true", accept="*/*"
    )
    try:
        assert resp.status == 200 and resp.getheader("Content-Type") == "application/x-ndjson"
        lines = [json.loads(line) for line in resp.read().splitlines() if line.strip()]
    finally:
        conn.close()
    assert "summary" in lines[-1]["result"]


def test_failure_after_the_first_message_is_a_final_error_line(open_server):
    conn, resp = open_stream(open_server, {"prompt": "x [[fake mode=fail]]"})
    try:
        assert resp.status == 200
        lines = [json.loads(line) for line in resp.read().splitlines() if line.strip()]
    finally:
        conn.close()
    assert "result" in lines[0]
    assert all("result" in line for line in lines[:-1])
    error = lines[-1]["error"]
    assert error["code"] > 0 and error["message"]
    reasons = [d["reason"] for d in error["details"] if d["@type"].endswith("ErrorInfo")]
    assert reasons == ["CODEX_EXEC_FAILED"]


def test_failure_before_the_first_message_is_a_plain_http_error(open_server):
    conn, resp = open_stream(open_server, {"prompt": ""})
    try:
        assert resp.status == 400
        assert resp.getheader("Content-Type").startswith("application/json")
        assert json.loads(resp.read())["error"]["code"] == "missing_prompt"
    finally:
        conn.close()
