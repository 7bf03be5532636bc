"""A pool of two Codex accounts where the first answers "usage limit": every
request still succeeds on the second, Health shows the first exhausted until
its reset, and the metrics say so too. Served in-process
(tests/support/inprocess_server.py)."""

from __future__ import annotations

import json

from codeximage.v1 import image_service_pb2 as pb

from tests.shim.client import request
from tests.support.inprocess_server import serve_in_process

from .conftest import generate
from .test_http import scrape, value

RESETS_AT = 1893456000  # what the fake codex's usage-limit answer says


def home(path, *, mode: str = "ok"):
    path.mkdir(parents=True)
    (path / "auth.json").write_text('{"fake": true}')
    if mode != "ok":
        (path / "fake_codex.json").write_text(json.dumps({"mode": mode}))
    return path


def test_requests_move_to_the_other_account_when_one_is_used_up(tmp_path):
    spent = home(tmp_path / "home-spent", mode="quota")
    fresh = home(tmp_path / "home-fresh")
    args = ["--account", f"spent:2={spent}", "--account", f"fresh:2={fresh}"]
    with serve_in_process(tmp_path, args=args, http=True) as srv:
        stub = srv.stub()
        before = stub.Health(pb.HealthRequest())
        assert [
            (a.name, a.codex_home, a.limit, a.ready, a.logged_in, a.found) for a in before.accounts
        ] == [
            ("spent", str(spent), 2, True, True, True),
            ("fresh", str(fresh), 2, True, True, True),
        ]
        for i in range(4):
            images, err = generate(stub, f"pool {i}", count=2, request_id=f"pool-{i}")
            assert err is None, err
            assert [im.account for im in images] == ["fresh", "fresh"]
        record = stub.GetRequest(pb.GetRequestRequest(request_id="pool-0")).request
        assert record.status == "completed" and list(record.accounts) == ["fresh"]
        health = stub.Health(pb.HealthRequest())
        assert health.ready
        spent_status, fresh_status = health.accounts
        assert spent_status.exhausted_until.seconds == RESETS_AT and not spent_status.ready
        assert not fresh_status.HasField("exhausted_until") and fresh_status.ready
        assert fresh_status.in_use == 0
        found = scrape(srv.http_base)
        assert (
            value(found, "codex_image_account_exhausted_until_seconds", account="spent")
            == RESETS_AT
        )
        assert value(found, "codex_image_account_ready", account="spent") == 0
        assert value(found, "codex_image_account_ready", account="fresh") == 1
        assert request(srv.http_base, "GET", "/healthz").json()["accounts"][0]["name"] == "spent"
    # Each candidate that met the used-up account was retried on the other.
    spent_runs = [r for r in srv.log_records() if r["event"] == "candidate.account_exhausted"]
    assert 1 <= len(spent_runs) <= 2 and {r["account"] for r in spent_runs} == {"spent"}


def test_when_every_account_is_used_up_the_caller_gets_quota_exhausted(tmp_path):
    a = home(tmp_path / "a", mode="quota")
    b = home(tmp_path / "b", mode="quota")
    with serve_in_process(tmp_path, args=["--account", f"a={a}", "--account", f"b={b}"]) as srv:
        _, err = generate(srv.stub(), "nothing left")
        assert err is not None and err.code().name == "RESOURCE_EXHAUSTED"
        _, err = generate(srv.stub(), "still nothing")
        assert err.code().name == "RESOURCE_EXHAUSTED"
        assert all(
            a.exhausted_until.seconds == RESETS_AT
            for a in srv.stub().Health(pb.HealthRequest()).accounts
        )
    # The second request ran no codex at all: both accounts were known to be used up.
    assert len(srv.fake_runs()) == 2


def test_one_account_stays_the_simple_default(tmp_path):
    with serve_in_process(tmp_path) as srv:
        (acct,) = srv.stub().Health(pb.HealthRequest()).accounts
        assert (acct.name, acct.codex_home, acct.limit, acct.ready) == (
            "default",
            str(srv.codex_home),
            4,
            True,
        )
