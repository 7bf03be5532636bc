"""Nothing reserved before it is earned, on real sockets against a real
server with a key: a body is read only from a caller whose key passes, only
as its bytes arrive and only up to the limit; unfinished headers, stalled
bodies and idle kept-alive connections are cut off; one address holds a
bounded number of connections. Memory is the server's RSS, read from /proc
by its pid."""

from __future__ import annotations

import gzip
import json
import time

import pytest
from codex_image_server.settings import Settings
from codex_image_shim.connection_limits import client_of

from tests.shim.client import request
from tests.support import attacks
from tests.support.server_proc import start_server

KEY = "limits-test-key"
HEADER_S = 2.0
BODY_S = 1.5
# aiohttp reads and drops a refused body for up to 10 s (rounded up to whole
# seconds) so that its answer reaches a client still sending; then it closes.
LINGER_S = 11.0
SLACK_S = 2.0
BOMB = 256 * 1024 * 1024  # inflated; over the default body limit (about 108 MiB)
CPU_S = 0.15  # server CPU that is not inflating: an idle second, a refusal


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    args = [
        "--http-header-timeout-ms",
        str(int(HEADER_S * 1000)),
        "--http-body-timeout-ms",
        str(int(BODY_S * 1000)),
    ]
    with start_server(
        tmp_path_factory.mktemp("limits"),
        http=True,
        args=args,
        env={"CODEX_IMAGE_SERVER_API_KEY": KEY},
    ) as server:
        yield server


def healthz_ok(srv) -> None:
    reply = request(srv.http_base, "GET", "/healthz", timeout=2)
    assert reply.status == 200, reply.body[:200]


# Every surface, a route that does not exist and one that must never need a body.
ROUTES = [
    "/v1/images/generate",
    "/v1/images/generations",
    "/v1/images/edits",
    "/v1/images/some-id:cancel",
    "/metrics",
    "/healthz",
    "/",
    "/mcp",
    "/no/such/route",
]


def test_keyless_100_mb_announcements_are_401_at_once_and_cost_no_memory(srv):
    socks, answers = [], []
    with attacks.PeakRss(srv.pid) as rss:
        for i in range(40):
            socks.append(attacks.announce(srv.http_port, ROUTES[i % len(ROUTES)]))
        answers = [attacks.status_of(s, timeout=5) for s in socks]
        trickling = socks[::2]  # half trickle a byte now and then, half never send again
        took = attacks.wait_closed(
            socks, LINGER_S + SLACK_S, trickling=trickling, during=lambda: healthz_ok(srv)
        )
    attacks.close_all(socks)
    assert answers == [401] * 40
    assert rss.growth_mib < 64, (
        f"40 keyless 100 MB announcements grew the server by {rss.growth_mib:.0f} MiB"
    )
    assert took <= LINGER_S + SLACK_S


def test_a_keyless_expect_100_continue_is_refused_before_the_body_is_asked_for(srv):
    sock = attacks.connect(srv.http_port)
    sock.sendall(
        b"POST /v1/images/generations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
        b"application/json\r\n"
        b"Content-Length: 100000000\r\nExpect: 100-continue\r\n\r\n"
    )
    assert attacks.status_of(sock, timeout=5) == 401  # not 100
    sock.close()


def test_the_openai_surface_answers_a_keyless_body_in_its_own_shape(srv):
    reply = request(srv.http_base, "POST", "/v1/images/generations", body={"prompt": "x"})
    assert reply.status == 401
    assert reply.json()["error"]["type"] == "authentication_error", reply.body[:300]
    reply = request(srv.http_base, "POST", "/v1/images/generate", body={"prompt": "x"})
    assert reply.status == 401 and reply.json()["error"]["code"] == "unauthorized"
    assert "Bearer" in reply.header("WWW-Authenticate")


def test_a_keyed_body_is_held_only_as_it_arrives(srv):
    """100 MB announced (within the limit), 1 MB sent: the server holds about the megabyte."""
    with attacks.PeakRss(srv.pid) as rss:
        sock = attacks.announce(
            srv.http_port,
            "/v1/images/generate",
            {"X-API-Key": KEY},
            first=b'{"prompt": "' + b" " * (1 << 20),
        )
        time.sleep(0.5)  # the server reads what came; the rest never does
        answer = attacks.status_of(sock, timeout=BODY_S + SLACK_S)
        took = attacks.wait_closed([sock], SLACK_S)
    sock.close()
    assert answer == 408
    assert took < 1.0, "a stalled body's connection is closed with its answer, not lingered on"
    assert rss.growth_mib < 16, (
        f"a 1 MiB body announced as 100 MB grew the server by {rss.growth_mib:.0f} MiB"
    )


def test_a_body_that_keeps_arriving_is_not_cut_off(srv):
    body = json.dumps({"prompt": "slow but steady", "size": "nope"}).encode()
    sock = attacks.connect(srv.http_port)
    sock.sendall(
        f"POST /v1/images/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    )
    pause = BODY_S / 3
    for i in range(
        0, len(body), 8
    ):  # each pause well under the body timeout, the whole well over it
        sock.sendall(body[i : i + 8])
        time.sleep(pause)
    assert attacks.status_of(sock, timeout=10) == 400  # parsed: the size is what is wrong
    sock.close()


def test_unfinished_headers_are_cut_off_while_healthz_answers(srv):
    before = attacks.fd_count(srv.pid)
    started = time.monotonic()
    with attacks.PeakRss(srv.pid) as rss:
        socks = [attacks.unfinished_headers(srv.http_port) for _ in range(300)]
        healthz_ok(srv)
        took = attacks.wait_closed(
            socks, HEADER_S + SLACK_S, trickling=socks, every=0.2, during=lambda: healthz_ok(srv)
        )
    attacks.close_all(socks)
    assert HEADER_S - 0.5 <= time.monotonic() - started <= HEADER_S + SLACK_S + 1, took
    assert rss.growth_mib < 64
    assert attacks.fd_count(srv.pid) <= before + 4


def test_an_unfinished_request_gets_a_408_and_a_silent_connection_is_just_closed(srv):
    begun = attacks.unfinished_headers(srv.http_port)
    silent = attacks.connect(srv.http_port)
    assert attacks.status_of(begun, timeout=HEADER_S + SLACK_S) == 408
    assert attacks.status_of(silent, timeout=SLACK_S) is None
    assert attacks.is_closed(silent)
    begun.close()
    silent.close()


def test_a_gzip_bomb_without_a_key_is_401_without_inflating(srv):
    bomb = attacks.gzip_bomb(BOMB)
    assert len(bomb) < 1024 * 1024
    cpu = attacks.cpu_s(srv.pid)
    with attacks.PeakRss(srv.pid) as rss:
        reply = request(
            srv.http_base,
            "POST",
            "/v1/images/generations",
            body=bomb,
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        time.sleep(1.0)  # what the server does with the rest of the body
    assert reply.status == 401, reply.body[:300]
    assert rss.growth_mib < 16, f"a keyless bomb grew the server by {rss.growth_mib:.0f} MiB"
    # Inflating the 256 MiB costs about 0.8 s of CPU here; refusing, nothing.
    assert attacks.cpu_s(srv.pid) - cpu < CPU_S, "the server inflated a keyless body"


@pytest.mark.parametrize(
    "path, limit",
    [
        ("/v1/images/generations", "http_max_text_body_bytes"),
        ("/v1/images/generate", "http_max_body_bytes"),
    ],
)
def test_a_gzip_bomb_with_a_key_is_413_having_inflated_at_most_the_limit(srv, path, limit):
    bomb = attacks.gzip_bomb(BOMB)
    with attacks.PeakRss(srv.pid) as rss:
        reply = request(
            srv.http_base,
            "POST",
            path,
            body=bomb,
            headers={
                "Content-Type": "application/json",
                "Content-Encoding": "gzip",
                "X-API-Key": KEY,
            },
        )
        answered = attacks.cpu_s(srv.pid)
        time.sleep(1.0)
    assert reply.status == 413, reply.body[:300]
    # The rest of the bomb (about 150 MiB) would cost about 0.35 s to inflate.
    assert attacks.cpu_s(srv.pid) - answered < CPU_S, "the server went on inflating after its 413"
    limit_mib = getattr(Settings(), limit) / 2**20
    assert rss.growth_mib < limit_mib + 16, (
        f"inflating grew the server by {rss.growth_mib:.0f} MiB (limit {limit_mib})"
    )


def test_a_compressed_body_within_the_limit_still_works(srv):
    body = gzip.compress(json.dumps({"prompt": "a fox", "size": "nope"}).encode())
    reply = request(
        srv.http_base,
        "POST",
        "/v1/images/generate",
        body=body,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip", "X-API-Key": KEY},
    )
    assert reply.status == 400 and "size" in reply.body.decode(), reply.body[:300]


def test_a_kept_alive_connection_idle_past_its_timeout_is_closed(tmp_path):
    args = ["--http-keepalive-timeout-ms", "1500", "--http-header-timeout-ms", "500"]
    with start_server(tmp_path, http=True, args=args) as server:
        sock = attacks.connect(server.http_port)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert attacks.status_of(sock, timeout=5) == 200
        time.sleep(
            1.0
        )  # past the header timeout: an idle kept-alive connection is not a slow request
        assert not attacks.is_closed(sock)
        took = attacks.wait_closed([sock], 3.0, every=0.05)
        assert took <= 1.5, took
        sock.close()


def test_one_address_holds_at_most_its_cap_of_connections(tmp_path):
    args = ["--http-max-loopback-connections", "8"]
    with start_server(tmp_path, http=True, args=args) as server:
        held = [attacks.connect(server.http_port) for _ in range(8)]
        extra = attacks.connect(server.http_port)
        reply = extra.recv(4096)  # answered before it sends anything
        assert reply.startswith(b"HTTP/1.1 429 "), reply[:200]
        assert b"\r\nRetry-After: 1\r\n" in reply and b"too_many_connections" in reply
        assert attacks.wait_closed([extra], 2.0) <= 1.5
        held.pop().close()
        # The freed place is taken again (the server sees the close first).
        deadline = time.monotonic() + 5
        while True:
            sock = attacks.connect(server.http_port)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            status = attacks.status_of(sock, timeout=5)
            sock.close()
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert status == 200
        attacks.close_all(held + [extra])


@pytest.mark.parametrize(
    "peer, key, loopback",
    [
        (("127.0.0.1", 1), "loopback", True),
        (("127.8.9.10", 1), "loopback", True),
        (("::1", 1, 0, 0), "loopback", True),
        (("::ffff:127.0.0.1", 1, 0, 0), "loopback", True),
        (("203.0.113.7", 1), "203.0.113.7", False),
        (("::ffff:203.0.113.7", 1, 0, 0), "203.0.113.7", False),
        (("2001:db8:1:2:3:4:5:6", 1, 0, 0), "2001:db8:1:2::/64", False),
        (("2001:db8:1:2:ffff::1", 1, 0, 0), "2001:db8:1:2::/64", False),
        ("", "loopback", True),
    ],
)
def test_connections_are_counted_per_address_and_per_ipv6_64(peer, key, loopback):
    assert client_of(peer) == (key, loopback)
