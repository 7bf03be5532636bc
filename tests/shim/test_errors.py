"""Every error the shim answers: status, the plugin's error body, the
google.rpc.Status beside it, and never a 500 or a stack trace for bad input.
Served in-process (tests/support/inprocess_server.py), but for the timeout
and full queue, which count the fake codex runs a server process kills."""

from __future__ import annotations

import http.client
import json
import threading

import pytest

from tests.support import procs
from tests.support.inprocess_server import serve_in_process
from tests.support.server_proc import start_server

from .client import data_url, png, request
from .conftest import KEY

GENERATE = "/v1/images/generate"


IN_PROCESS = True  # its servers: see conftest.py


def check_error(reply, status: int, code: str) -> dict:
    assert reply.status == status, reply.body
    assert reply.header("Content-Type").startswith("application/json")
    assert b"Traceback" not in reply.body
    body = reply.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["error"]["type"] == ("invalid_request_error" if status < 500 else "server_error")
    assert body["status"]["code"] > 0
    assert body["status"]["message"] == body["error"]["message"]
    infos = [d for d in body["status"]["details"] if d["@type"].endswith("google.rpc.ErrorInfo")]
    assert infos and infos[0]["reason"].lower() == code
    assert reply.header("Vary") == "Origin" and reply.header("Access-Control-Allow-Origin") is None
    return body


@pytest.mark.parametrize("raw", [b"{bad json", b"", b"[1, 2]", b"\xff\xfe", b'"just a string"'])
def test_malformed_json(open_server, raw):
    check_error(request(open_server.http_base, "POST", GENERATE, raw), 400, "invalid_json")


@pytest.mark.parametrize(
    "body",
    [
        {"prompt": 5},
        {"prompt": "x", "count": "many"},
        {"prompt": "x", "count": True},
        {"prompt": "x", "references": "nope"},
        {"prompt": "x", "references": [5]},
        {"prompt": "x", "quality": ["high"]},
        {"prompt": "x", "references": [{"image": 7}]},
    ],
)
def test_wrong_types(open_server, body):
    check_error(request(open_server.http_base, "POST", GENERATE, body), 400, "invalid_json")


@pytest.mark.parametrize(
    "body, code",
    [
        ({"prompt": "   "}, "missing_prompt"),
        ({"prompt": "x", "output_format": "bmp"}, "invalid_output_format"),
        ({"prompt": "x", "quality": "ultra"}, "invalid_quality"),
        ({"prompt": "x", "size": "12x12"}, "invalid_size"),
        ({"prompt": "x", "size": "huge"}, "invalid_size"),
        ({"prompt": "x", "count": 9}, "invalid_count"),
        (
            {"prompt": "x", "references": [{"image": "data:image/png;base64,@@@not-base64@@@"}]},
            "invalid_reference",
        ),
        ({"prompt": "x", "references": [{"image": "data:image/png,rawtext"}]}, "invalid_reference"),
        ({"prompt": "x", "references": [{"label": "no image"}]}, "invalid_reference"),
        ({"prompt": "x", "reference_images_base64": ["!!!"]}, "invalid_reference"),
        (
            {"prompt": "x", "references": [{"image": data_url(b"not an image at all")}]},
            "invalid_reference",
        ),
    ],
)
def test_bad_requests(open_server, body, code):
    check_error(request(open_server.http_base, "POST", GENERATE, body), 400, code)


def test_too_many_references(open_server):
    """The plugin's limit is 16: a 17th is refused, naming the field."""
    refs = [{"image": data_url(png(4, 4))} for _ in range(17)]
    reply = request(open_server.http_base, "POST", GENERATE, {"prompt": "x", "references": refs})
    assert reply.status == 400
    body = reply.json()
    assert body["error"]["code"] == "too_many_references"
    assert "17 references given, at most 16" in body["error"]["message"]


def test_unknown_route_and_image(open_server):
    check_error(request(open_server.http_base, "GET", "/v1/nothing"), 404, "not_found")
    check_error(
        request(open_server.http_base, "GET", "/nothing"), 404, "not_found"
    )  # `/` is the console
    missing = "img_" + "0" * 32
    check_error(
        request(open_server.http_base, "GET", f"/v1/images/{missing}/file"), 404, "not_found"
    )
    check_error(request(open_server.http_base, "GET", f"/v1/images/{missing}"), 404, "not_found")
    head = request(open_server.http_base, "HEAD", f"/v1/images/{missing}/file")
    assert head.status == 404 and head.body == b""
    bad_id = request(open_server.http_base, "GET", "/v1/images/..%2F..%2Fetc%2Fpasswd/file")
    assert bad_id.status in (400, 404)


@pytest.mark.parametrize(
    "method, path, allow",
    [
        ("GET", GENERATE, "POST"),
        ("DELETE", "/v1/capabilities", "GET"),
        ("POST", "/healthz", "GET"),
        ("PUT", "/v1/images/img_x/file", "GET"),
        ("POST", "/v1/openapi.json", "GET"),
    ],
)
def test_wrong_method(open_server, method, path, allow):
    reply = request(open_server.http_base, method, path, b"{}" if method != "GET" else None)
    if method == "GET" and path == GENERATE:
        # GET /v1/images/generate is GetImage("generate"): the id does not exist.
        check_error(reply, 404, "not_found")
        return
    check_error(reply, 405, "method_not_allowed")
    assert allow in reply.header("Allow")


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}],
)
def test_unauthorized(keyed_server, headers):
    for method, path, body in [
        ("GET", "/v1/capabilities", None),
        ("POST", GENERATE, {"prompt": "x"}),
        ("GET", f"/v1/images/img_{'0' * 32}/file", None),
        ("GET", f"/v1/images/img_{'0' * 32}", None),
        ("GET", "/v1/openapi.json", None),
    ]:
        check_error(
            request(keyed_server.http_base, method, path, body, headers=headers),
            401,
            "unauthorized",
        )
    assert keyed_server.fake_runs() == []


def test_unauthorized_says_how_to_fix_it(keyed_server):
    """The Photoshop host never sends a key: its user must learn what to do."""
    keyless = request(keyed_server.http_base, "POST", GENERATE, {"prompt": "x"}).json()["error"][
        "message"
    ]
    assert "requires an API key" in keyless
    for hint in (
        "X-API-Key: <key>",
        "Authorization: Bearer <key>",
        "CODEX_IMAGE_SERVER_API_KEY",
        "--api-key",
    ):
        assert hint in keyless
    wrong = request(
        keyed_server.http_base, "POST", GENERATE, {"prompt": "x"}, headers={"X-API-Key": "nope"}
    )
    assert "not one this server accepts" in wrong.json()["error"]["message"]


def test_body_too_large(tmp_path):
    with serve_in_process(
        tmp_path, http=True, env={"CODEX_IMAGE_SERVER_HTTP_MAX_BODY_BYTES": "2048"}
    ) as srv:
        big = {"prompt": "x", "references": [{"image": data_url(b"\0" * 4096)}]}
        check_error(request(srv.http_base, "POST", GENERATE, big), 413, "body_too_large")
        # Without Content-Length (chunked), the limit holds while reading.
        conn = http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=30)
        payload = json.dumps(big).encode()
        conn.request(
            "POST",
            GENERATE,
            body=iter([payload[:1000], payload[1000:]]),
            headers={"Content-Type": "application/json"},
            encode_chunked=True,
        )
        resp = conn.getresponse()
        assert resp.status == 413
        assert b"body_too_large" in resp.read()
        conn.close()
        assert srv.fake_runs() == []
        ok = request(srv.http_base, "POST", GENERATE, {"prompt": "small enough"})
        assert ok.status == 200


@pytest.mark.parametrize(
    "mode, status, code",
    [
        ("noimage", 500, "codex_no_image"),
        ("quota", 429, "quota_exhausted"),
        ("fail", None, "codex_exec_failed"),
    ],
)
def test_codex_failures(open_server, mode, status, code):
    reply = request(open_server.http_base, "POST", GENERATE, {"prompt": f"x [[fake mode={mode}]]"})
    body = check_error(reply, status or reply.status, code)
    assert reply.status >= 500 or reply.status == 429, body
    if mode == "quota":
        assert reply.header("Retry-After") is None or int(reply.header("Retry-After")) >= 1


@pytest.mark.parametrize(
    "directive, code, field",
    [
        ("mode=moderation", "moderation_blocked", "prompt"),  # the caller must change the prompt
        ("layout=unknown", "codex_unsupported", None),  # the operator must install a tested codex
    ],
)
def test_refusals_the_caller_or_operator_must_act_on_are_400s(open_server, directive, code, field):
    reply = request(open_server.http_base, "POST", GENERATE, {"prompt": f"x [[fake {directive}]]"})
    body = check_error(reply, 400, code)
    bad = [d for d in body["status"]["details"] if d["@type"].endswith("google.rpc.BadRequest")]
    assert [v["field"] for b in bad for v in b["field_violations"]] == ([field] if field else [])


def test_timeout_and_queue_full(tmp_path):
    with start_server(
        tmp_path,
        http=True,
        env={
            "CODEX_IMAGE_SERVER_MAX_CONCURRENT": "1",
            "CODEX_IMAGE_SERVER_QUEUE_LIMIT": "0",
            "CODEX_IMAGE_SERVER_GENERATION_TIMEOUT_MS": "1500",
        },
    ) as srv:
        slow: list = []
        worker = threading.Thread(
            target=lambda: slow.append(
                request(srv.http_base, "POST", GENERATE, {"prompt": "slow [[fake delay=10]]"})
            )
        )
        worker.start()
        assert procs.wait_until(lambda: len(srv.fake_runs()) == 1, 10)
        check_error(
            request(srv.http_base, "POST", GENERATE, {"prompt": "second"}), 429, "queue_full"
        )
        worker.join(30)
        check_error(slow[0], 504, "codex_timeout")
        assert procs.wait_until(lambda: procs.all_gone(srv.fake_runs()), 10)
