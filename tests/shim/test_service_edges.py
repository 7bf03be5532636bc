"""The shim against less usual service states: codex not ready, large references.
Served in-process (tests/support/inprocess_server.py)."""

from __future__ import annotations

from tests.support.inprocess_server import serve_in_process

from .client import data_url, noise_png, request

IN_PROCESS = True  # its servers: see conftest.py


def test_healthz_is_503_while_codex_is_not_logged_in(tmp_path):
    with serve_in_process(tmp_path, http=True, logged_in=False) as srv:
        reply = request(srv.http_base, "GET", "/healthz")
        assert reply.status == 503
        health = reply.json()
        assert health["status"] != "ok" and health["problem"]
        gen = request(srv.http_base, "POST", "/v1/images/generate", {"prompt": "x"})
        assert 400 <= gen.status < 600 and gen.status != 500, gen.body
        assert gen.json()["error"]["code"] == "codex_not_logged_in"


def test_references_larger_than_grpcs_default_message_limit(open_server):
    refs = [{"image": data_url(noise_png(1000, 1000)), "label": f"layer {i}"} for i in range(2)]
    assert sum(len(r["image"]) for r in refs) > 6 * 1024 * 1024  # > gRPC's 4 MB default
    reply = request(
        open_server.http_base, "POST", "/v1/images/generate", {"prompt": "x", "references": refs}
    )
    assert reply.status == 200, reply.body[:500]
    assert len(reply.json()["data"]) == 1
