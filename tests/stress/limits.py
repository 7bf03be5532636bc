"""Attacks on the HTTP port's limits (docs/security-limits.md), against a
server with a key: bodies of 100 MB announced without a key and then trickled
or never sent, unfinished headers (slowloris) while /healthz is polled, gzip
bombs with and without a key. Each limit that does not hold is counted in
Figures.limits_broken, with an example saying which and by how much."""

from __future__ import annotations

import time

from tests.shim.client import request
from tests.support import attacks

from .figures import Figures

HEADER_S = 2.0
BODY_S = 2.0
# aiohttp drops the rest of a refused body for up to 10 s (rounded up to whole
# seconds) so a client still sending reads its answer; then it closes.
LINGER_S = 11.0
SLACK_S = 3.0
GROWTH_MIB = 64
BOMB = 256 * 1024 * 1024
CPU_S = 0.15  # inflating the rest of the bomb after an answer costs 0.3 s or more
ROUTES = (
    "/v1/images/generate",
    "/v1/images/generations",
    "/v1/images/edits",
    "/metrics",
    "/healthz",
    "/",
    "/mcp",
    "/no/such/route",
)
SERVER_ARGS = [
    "--http-header-timeout-ms",
    str(int(HEADER_S * 1000)),
    "--http-body-timeout-ms",
    str(int(BODY_S * 1000)),
]


def _broken(figures: Figures, what: str) -> None:
    figures.limits_broken += 1
    figures._example(f"limit broken: {what}")


def _healthz(srv, figures: Figures) -> None:
    try:
        reply = request(srv.http_base, "GET", "/healthz", timeout=SLACK_S)
        figures.answer(reply.status, reply.body, "healthz under attack")
        if reply.status != 200:
            _broken(figures, f"/healthz answered {reply.status} under attack")
    except OSError as exc:
        _broken(figures, f"/healthz did not answer under attack: {type(exc).__name__}")


def _closed_in_time(socks, timeout: float, figures: Figures, what: str, srv, trickling=()) -> float:
    try:
        return attacks.wait_closed(
            socks, timeout, trickling=trickling, during=lambda: _healthz(srv, figures)
        )
    except AssertionError as exc:
        _broken(figures, f"{what}: {exc}")
        return float("nan")


def keyless_announcements(srv, figures: Figures, count: int) -> str:
    """`count` connections announce 100 MB each without a key; half trickle,
    half never send again. Each must be a 401 at once, all closed within the
    lingering time, and the server must grow by less than 64 MiB."""
    socks = []
    try:
        with attacks.PeakRss(srv.pid) as rss:
            socks = [attacks.announce(srv.http_port, ROUTES[i % len(ROUTES)]) for i in range(count)]
            for sock in socks:
                status = attacks.status_of(sock, timeout=SLACK_S)
                figures.answer(status, b"", "keyless 100 MB announcement")
                if status != 401:
                    _broken(figures, f"a keyless 100 MB announcement got {status}, not 401")
            took = _closed_in_time(
                socks,
                LINGER_S + SLACK_S,
                figures,
                "keyless announcements",
                srv,
                trickling=socks[::2],
            )
    finally:
        attacks.close_all(socks)
    if rss.growth_mib >= GROWTH_MIB:
        _broken(
            figures,
            f"{count} keyless 100 MB announcements grew the server by {rss.growth_mib:.0f} MiB",
        )
    return (
        f"{count} keyless 100 MB announcements: RSS +{rss.growth_mib:.1f} MiB, "
        f"all closed after {took:.1f} s"
    )


def slowloris(srv, figures: Figures, count: int) -> str:
    """`count` connections whose headers never end, trickling a byte now and
    then: all closed within the header timeout while /healthz answers."""
    socks = []
    try:
        with attacks.PeakRss(srv.pid) as rss:
            socks = [attacks.unfinished_headers(srv.http_port) for _ in range(count)]
            figures.requests += count
            took = _closed_in_time(
                socks, HEADER_S + SLACK_S, figures, "unfinished headers", srv, trickling=socks
            )
    finally:
        attacks.close_all(socks)
    if rss.growth_mib >= GROWTH_MIB:
        _broken(figures, f"{count} unfinished headers grew the server by {rss.growth_mib:.0f} MiB")
    return (
        f"{count} unfinished headers (header timeout {HEADER_S:g} s): RSS +{rss.growth_mib:.1f} "
        "MiB, "
        f"all closed after {took:.1f} s"
    )


def gzip_bombs(srv, figures: Figures, key: str, limit_bytes: int) -> str:
    """A 256 MiB gzip bomb to an OpenAI route: without a key a 401 having
    inflated nothing, with one a 413 having inflated at most the route's
    limit (`limit_bytes`)."""
    bomb = attacks.gzip_bomb(BOMB)
    seen = []
    for headers, want in (({}, 401), ({"X-API-Key": key}, 413)):
        cpu = attacks.cpu_s(srv.pid)
        with attacks.PeakRss(srv.pid) as rss:
            reply = request(
                srv.http_base,
                "POST",
                "/v1/images/generations",
                body=bomb,
                timeout=60,
                headers={"Content-Type": "application/json", "Content-Encoding": "gzip", **headers},
            )
            answered = attacks.cpu_s(srv.pid)
            time.sleep(1.0)  # what the server does with the rest of the bomb
        figures.answer(reply.status, reply.body, f"gzip bomb, want {want}")
        if reply.status != want:
            _broken(figures, f"a gzip bomb got {reply.status}, not {want}")
        after = attacks.cpu_s(srv.pid) - answered
        if want == 401 and (answered - cpu > CPU_S or rss.growth_mib > 16):
            _broken(
                figures,
                f"a keyless bomb cost {answered - cpu:.1f} s CPU and {rss.growth_mib:.0f} MiB",
            )
        if want == 413 and rss.growth_mib > limit_bytes / 2**20 + 16:
            _broken(figures, f"a keyed bomb grew the server by {rss.growth_mib:.0f} MiB")
        if after > CPU_S:
            _broken(
                figures,
                f"the server went on inflating a bomb after its {reply.status} ({after:.1f} s CPU)",
            )
        seen.append(
            f"{reply.status} (RSS +{rss.growth_mib:.1f} MiB, CPU {answered - cpu:.2f} s, "
            f"then {after:.2f} s)"
        )
    return (
        f"a {len(bomb) // 1024} KiB gzip bomb of {BOMB >> 20} MiB: "
        f"without a key {seen[0]}, with one {seen[1]}"
    )
