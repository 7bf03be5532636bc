"""/healthz on a server with keys tells a caller without a (good) key only
whether to send traffic: status, readiness and the fixed facts the plugin
contract reads there (auth_required, backend, model, the time limit); the
details (codex's path and version, CODEX_HOMEs, account names, slots) need a
key. A server without keys shows them to all, as before. The fast path
(fixed.py) and the normal route ("/healthz?") answer alike: checked here and
in test_fixed_answers.py.
Served in-process (tests/support/inprocess_server.py)."""

from __future__ import annotations

import grpc
import pytest
from codeximage.v1 import image_service_pb2 as pb

from .client import request
from .conftest import KEY

IN_PROCESS = True  # its servers: see conftest.py


def _health(srv, path: str = "/healthz", headers: dict | None = None) -> dict:
    reply = request(srv.http_base, "GET", path, headers=headers)
    assert reply.status == 200, reply.body
    return reply.json()


@pytest.mark.parametrize("path", ["/healthz", "/healthz?"])
@pytest.mark.parametrize(
    "headers", [None, {"X-API-Key": "not-the-key"}, {"Authorization": "Bearer nope"}]
)
def test_without_a_good_key_only_status_and_readiness(keyed_server, path, headers):
    body = _health(keyed_server, path, headers)
    assert set(body) == {
        "status",
        "ready",
        "auth_required",
        "backend",
        "model",
        "generation_timeout_ms",
    }
    assert body["status"] == "ok" and body["ready"] is True and body["auth_required"] is True
    text = str(body)
    assert "/" not in text and str(keyed_server.codex_home) not in text


@pytest.mark.parametrize("path", ["/healthz", "/healthz?"])
def test_with_the_key_the_details(keyed_server, path):
    body = _health(keyed_server, path, {"X-API-Key": KEY})
    assert body["codex"]["path"] and body["codex"]["version"] and body["slots"]["limit"] >= 1
    assert body["accounts"] and body["server_version"]


def test_an_open_server_shows_the_details_to_all(open_server):
    body = _health(open_server)
    assert body["codex"]["path"] and body["accounts"] and body["auth_required"] is False


def test_grpc_health_needs_the_key_for_details(keyed_server):
    stub = keyed_server.stub()
    with pytest.raises(grpc.RpcError) as caught:
        stub.Health(pb.HealthRequest(), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert stub.Health(pb.HealthRequest(), metadata=[("x-api-key", KEY)], timeout=10).codex.path
