"""Disconnect means cancel: the seed smoke test's count 4, abort after 500 ms,
then every codex process of the request is gone, looked up by pid."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.support import procs
from tests.support.server_proc import start_server

from .client import abort, http_post_bytes, raw_request, request

GONE_WITHIN_S = 4.0


def _start_slow(
    srv, path: str = "/v1/images/generate", extra: str = "", prompt: str = "slow [[fake delay=30]]"
):
    body = json.dumps({"prompt": prompt, "count": 4}).encode()
    sock = raw_request(srv.http_port, http_post_bytes(path, body, extra))
    started = time.monotonic()
    assert procs.wait_until(lambda: len(srv.fake_runs()) == 4, 10), srv.log_text()[-2000:]
    time.sleep(max(0.0, 0.5 - (time.monotonic() - started)))
    runs = srv.fake_runs()
    assert all(procs.running(r["pid"]) for r in runs)
    return sock, runs


def _assert_gone_soon(srv, runs) -> float:
    t0 = time.monotonic()
    gone = procs.wait_until(lambda: procs.all_gone(runs), GONE_WITHIN_S)
    took = time.monotonic() - t0
    assert gone, f"codex processes still there {GONE_WITHIN_S}s after the disconnect: {runs}"
    return took


@pytest.mark.parametrize("how", ["reset", "close"])
def test_abort_after_500ms_kills_every_codex(tmp_path, how):
    with start_server(tmp_path, http=True) as srv:
        sock, runs = _start_slow(srv)
        if how == "reset":
            abort(sock)
        else:
            sock.close()
        took = _assert_gone_soon(srv, runs)
        print(f"{how}: every codex gone {took:.2f}s after the disconnect")
        assert procs.wait_until(
            lambda: any(r.get("event") == "generate.end" for r in srv.log_records()), 5
        )
        end = [r for r in srv.log_records() if r.get("event") == "generate.end"][-1]
        assert end["outcome"] in ("cancelled", "request_canceled")


def test_abort_mid_stream_kills_every_codex(tmp_path):
    with start_server(tmp_path, http=True) as srv:
        sock, runs = _start_slow(srv, extra="Accept: application/x-ndjson\r\n")
        sock.settimeout(5)
        assert b"200 OK" in sock.recv(65536)  # headers and the first lines have arrived
        abort(sock)
        _assert_gone_soon(srv, runs)


def test_half_close_after_sending_also_cancels(tmp_path):
    """A client that shuts down its sending side is gone as far as HTTP/1.1 is concerned."""
    with start_server(tmp_path, http=True) as srv:
        sock, runs = _start_slow(srv, prompt="slow [[fake delay=30 child=1]]")
        sock.shutdown(socket.SHUT_WR)
        _assert_gone_soon(srv, runs)
        sock.close()


def test_server_keeps_serving_after_aborts(tmp_path):
    with start_server(tmp_path, http=True) as srv:
        sock, runs = _start_slow(srv)
        abort(sock)
        _assert_gone_soon(srv, runs)
        reply = request(srv.http_base, "POST", "/v1/images/generate", {"prompt": "fine"})
        assert reply.status == 200 and len(reply.json()["data"]) == 1


IDLE_TIMEOUT_MS = 10_000  # the download idle timer: what used to end such a call, far later
FLOODED_GONE_WITHIN_S = 2.0
FLOODED_ROUNDS = 6


def test_caller_leaving_as_an_event_arrives_still_cancels(tmp_path):
    """A caller that drops its connection just as a progress event reaches
    the server: the cancellation must not be lost to that event (asyncio's
    wait_for on Python 3.11 returned the event and dropped it), or the call
    runs on until the idle timer notices nobody reads. Codex streams events
    in bursts here, so nearly every drop meets one."""
    with start_server(
        tmp_path, http=True, args=["--download-idle-timeout-ms", str(IDLE_TIMEOUT_MS)]
    ) as srv:
        for i in range(FLOODED_ROUNDS):
            request_id = f"flooded{i}"
            body = json.dumps(
                {
                    "prompt": "x [[fake delay=30 chatter=20000]]",
                    "count": 1,
                    "request_id": request_id,
                }
            ).encode()
            sock = raw_request(srv.http_port, http_post_bytes("/v1/images/generate", body))
            assert procs.wait_until(lambda rid=request_id: srv.runs_of(rid), 10), srv.log_text()[
                -2000:
            ]
            time.sleep(0.1 + 0.05 * i)  # each round leaves at another moment of the flood
            runs = srv.runs_of(request_id)
            abort(sock)
            left = time.monotonic()
            gone = procs.wait_until(lambda runs=runs: procs.all_gone(runs), FLOODED_GONE_WITHIN_S)
            took = time.monotonic() - left
            assert gone, (
                f"round {i}: codex {[r['pid'] for r in runs]} still running {took:.1f}s "
                "after its caller left"
            )
