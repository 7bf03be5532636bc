"""Webhooks of detached generations: a real receiver on 127.0.0.1, the
signature verified with the `standardwebhooks` package (an implementation
independent of the server's), retries recorded, SSRF refusals at submit."""

from __future__ import annotations

import base64
import http.server
import json
import sqlite3
import threading

import grpc
import pytest
import standardwebhooks
from codeximage.v1 import image_service_pb2 as pb
from google.longrunning import operations_proto_pb2 as lro

from tests.service.test_operations import bad_fields, metadata, ops, wait
from tests.support import procs
from tests.support.server_proc import start_server

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


class Receiver:
    """Answers each POST with the next status of `answers` (then 200), and keeps what came."""

    def __init__(self, answers=()):
        self.answers = list(answers)
        self.received: list[tuple[str, dict, bytes]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.received.append((self.path, dict(self.headers), body))
                status = outer.answers.pop(0) if outer.answers else 200
                self.send_response(status)
                if status == 302:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with start_server(
        tmp_path_factory.mktemp("hooks"),
        args=["--kill-grace-ms", "300"],
        env={"CODEX_IMAGE_SERVER_WEBHOOK_SECRET": SECRET},
    ) as srv:
        yield srv


def test_a_signed_webhook_arrives_and_verifies(server, receiver):
    op = server.stub().SubmitGeneration(
        pb.GenerateRequest(
            prompt="h [[fake delay=0.3]]", request_id="hook-ok", webhook_url=receiver.url
        )
    )
    assert wait(server, op.name).done
    assert procs.wait_until(lambda: receiver.received, timeout=10)
    path, headers, body = receiver.received[0]
    assert path == "/hook"
    payload = standardwebhooks.Webhook(SECRET).verify(
        body, {k.lower(): v for k, v in headers.items()}
    )
    assert payload["type"] == "generation.succeeded"
    assert payload["data"]["name"] == "operations/hook-ok" and payload["data"]["done"] is True
    assert len(payload["data"]["response"]["images"]) == 1
    # A tampered body does not verify: the signature covers it.
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(SECRET).verify(
            body.replace(b"hook-ok", b"hook-no"), {k.lower(): v for k, v in headers.items()}
        )
    assert procs.wait_until(
        lambda: metadata(wait(server, op.name)).webhook.status == "delivered", timeout=5
    )


def test_cancelled_event_and_retries_recorded(server):
    receiver = Receiver(answers=[500, 503])
    try:
        op = server.stub().SubmitGeneration(
            pb.GenerateRequest(
                prompt="c [[fake delay=60]]", request_id="hook-cancel", webhook_url=receiver.url
            )
        )
        assert procs.wait_until(lambda: len(server.runs_of("hook-cancel")) == 1, timeout=15)

        ops(server).CancelOperation(lro.CancelOperationRequest(name=op.name))
        assert procs.wait_until(lambda: len(receiver.received) == 3, timeout=20)
        ids = {h["webhook-id"] for _, h, _ in receiver.received}
        assert len(ids) == 1, "every retry of one message carries its id"
        assert json.loads(receiver.received[-1][2])["type"] == "generation.cancelled"
        assert procs.wait_until(
            lambda: metadata(wait(server, op.name)).webhook.status == "delivered", timeout=5
        )
        assert metadata(wait(server, op.name)).webhook.attempts == 3
        # Each attempt is in the log, in order, with what the receiver answered.
        attempts = [
            (r["attempt"], r["status_code"], r["outcome"])
            for r in server.log_records()
            if r["event"] == "webhook.attempt" and r.get("request_id") == "hook-cancel"
        ]
        assert attempts == [(1, 500, "pending"), (2, 503, "pending"), (3, 200, "delivered")]
    finally:
        receiver.close()


def test_a_delivery_pending_when_the_server_dies_is_resumed_after_restart(tmp_path):
    receiver = Receiver(answers=[500] * 1000)
    state = tmp_path / "state"
    env = {"CODEX_IMAGE_SERVER_WEBHOOK_SECRET": SECRET}
    try:
        with start_server(tmp_path, state_dir=state, env=env) as first:
            op = first.stub().SubmitGeneration(
                pb.GenerateRequest(
                    prompt="k [[fake delay=0.1]]",
                    request_id="hook-restart",
                    webhook_url=receiver.url,
                )
            )
            assert wait(first, op.name).done
            assert procs.wait_until(
                lambda: metadata(wait(first, op.name)).webhook.attempts >= 1, timeout=10
            )
            first.kill_hard()
        before = len(receiver.received)
        assert metadata_of_stored(state, "hook-restart")["status"] == "pending"
        receiver.answers = []  # the receiver is back: 200 from now on
        with start_server(tmp_path, state_dir=state, env=env) as second:
            assert procs.wait_until(
                lambda: metadata(wait(second, op.name)).webhook.status == "delivered", timeout=40
            )
            delivery = metadata(wait(second, op.name)).webhook
            assert delivery.attempts == before + 1 and delivery.last_status_code == 200
            assert any(r["event"] == "webhook.resumed" for r in second.log_records())
        ids = {h["webhook-id"] for _, h, _ in receiver.received}
        assert len(ids) == 1, "the resumed delivery is the same message"
        payload = standardwebhooks.Webhook(SECRET).verify(
            receiver.received[-1][2], {k.lower(): v for k, v in receiver.received[-1][1].items()}
        )
        assert (
            payload["type"] == "generation.succeeded"
            and payload["data"]["name"] == "operations/hook-restart"
        )
    finally:
        receiver.close()


def metadata_of_stored(state, request_id: str) -> dict:
    """The delivery as the store kept it when the server died (read from its SQLite file)."""
    with sqlite3.connect(state / "index.sqlite3") as db:
        (webhook,) = db.execute(
            "SELECT webhook FROM operations WHERE request_id = ?", (request_id,)
        ).fetchone()
    return json.loads(webhook)


def test_redirects_are_not_followed(server):
    receiver = Receiver(answers=[302] * 100)
    try:
        op = server.stub().SubmitGeneration(
            pb.GenerateRequest(
                prompt="r [[fake delay=0.1]]", request_id="hook-302", webhook_url=receiver.url
            )
        )
        assert wait(server, op.name).done
        assert procs.wait_until(lambda: len(receiver.received) >= 2, timeout=10)
        assert all(path == "/hook" for path, _, _ in receiver.received)
    finally:
        receiver.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://192.0.2.10/hook",
        "http://10.0.0.1:8080/x",
        "ftp://127.0.0.1/x",
        "http://user:pw@127.0.0.1/x",
        "not a url",
    ],
)
def test_a_host_not_allowed_is_refused_at_submit(server, url):
    with pytest.raises(grpc.RpcError) as err:
        server.stub().SubmitGeneration(
            pb.GenerateRequest(prompt="x", request_id="hook-refused", webhook_url=url)
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(err.value) == ["webhook_url"]

    with pytest.raises(grpc.RpcError) as missing:
        ops(server).GetOperation(lro.GetOperationRequest(name="operations/hook-refused"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND, "nothing was queued"


def test_a_listed_host_is_allowed(tmp_path):
    # 192.0.2.10 (TEST-NET-1) never answers: the submit is accepted, the attempts fail and are
    # recorded.
    with start_server(
        tmp_path,
        env={
            "CODEX_IMAGE_SERVER_WEBHOOK_SECRET": SECRET,
            "CODEX_IMAGE_SERVER_WEBHOOK_ALLOW": "192.0.2.10",
            "CODEX_IMAGE_SERVER_WEBHOOK_RETRY_MS": "0",
        },
    ) as srv:
        op = srv.stub().SubmitGeneration(
            pb.GenerateRequest(
                prompt="x [[fake delay=0.1]]",
                request_id="hook-listed",
                webhook_url="http://192.0.2.10:9/hook",
            )
        )
        assert wait(srv, op.name).done
        assert procs.wait_until(
            lambda: metadata(wait(srv, op.name)).webhook.status == "failed", timeout=20
        )


def test_generate_sends_its_webhook_too(server, receiver):
    events = list(
        server.stub().Generate(
            pb.GenerateRequest(
                prompt="g [[fake delay=0.1]]", request_id="hook-gen", webhook_url=receiver.url
            )
        )
    )
    image_ids = [e.image.id for e in events if e.HasField("image")]
    assert procs.wait_until(lambda: receiver.received, timeout=10)
    _, headers, body = receiver.received[0]
    payload = standardwebhooks.Webhook(SECRET).verify(
        body, {k.lower(): v for k, v in headers.items()}
    )
    assert payload["type"] == "generation.succeeded"
    assert [i["id"] for i in payload["data"]["response"]["images"]] == image_ids
    with pytest.raises(grpc.RpcError) as err:
        list(
            server.stub().Generate(
                pb.GenerateRequest(prompt="g", webhook_url="http://192.0.2.10/x")
            )
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_fields(err.value) == [
        "webhook_url"
    ]
