"""The HTTP port's connection rules, kept below aiohttp's request handling so
that every route, present and future, is under them.

- Header timeout: a client has `header_timeout_s` to send a request line and
  all its headers, counted from the moment it connects, and on a kept-alive
  connection from the first byte of its next request. Past it the connection
  is closed (with a 408 when part of a request had come). aiohttp has a
  keep-alive timeout but no header timeout, so unfinished headers
  (slowloris) would hold a connection for as long as the keep-alive allows.
- Connections per client: one address may hold `per_address` connections at
  once (an IPv6 client counts per /64, what one host is usually given);
  loopback callers, this machine's own tools, share `per_loopback`. One over
  is answered at once with a fixed 429 and Retry-After, before any byte of
  it is read or parsed, and closed: it costs a descriptor for at most
  REFUSED_LINGER_S.

Timeouts of bodies are the body reader's (body.py); the keep-alive idle
timeout is aiohttp's own (`keepalive_timeout`, set by embed.py).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import ipaddress
import json
from typing import cast

import grpc
from aiohttp import web, web_protocol
from codex_image_server.runtime.logs import log

from . import errors

# What a refused client sends meanwhile is read and dropped, so our answer is not reset away.
REFUSED_LINGER_S = 1.0
RETRY_AFTER_S = 1
TALLY_INTERVAL_S = 5.0
LOOPBACK = "loopback"


@dataclasses.dataclass(frozen=True)
class Limits:
    header_timeout_s: float
    per_address: int  # 0: no cap
    per_loopback: int  # 0: no cap

    @classmethod
    def of(cls, settings) -> Limits:
        return cls(
            settings.http_header_timeout_ms / 1000,
            settings.http_max_connections_per_address,
            settings.http_max_loopback_connections,
        )


def client_of(peer) -> tuple[str, bool]:
    """(the key connections are counted under, whether it is loopback)."""
    host = peer[0] if isinstance(peer, tuple) and peer else ""
    try:
        address = ipaddress.ip_address(str(host).split("%")[0])
    except ValueError:
        return LOOPBACK, True  # a Unix socket: this machine
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.is_loopback:
        return LOOPBACK, True
    if address.version == 6:
        return str(ipaddress.ip_network((address, 64), strict=False)), False
    return str(address), False


def _fixed_answer(status: int, phrase: str, error: errors.ShimError, extra: str = "") -> bytes:
    body = json.dumps(errors.error_body(error.status, status), separators=(",", ":")).encode()
    return (
        f"HTTP/1.1 {status} {phrase}\r\nContent-Type: application/json\r\nContent-Length: "
        f"{len(body)}\r\n"
        f"{extra}Connection: close\r\n\r\n"
    ).encode() + body


REQUEST_TIMEOUT = _fixed_answer(
    408,
    "Request Timeout",
    errors.ShimError(
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "HEADER_TIMEOUT",
        "the request's headers did not all arrive in time",
        http_status=408,
    ),
)


def too_many_connections(cap: int) -> bytes:
    return _fixed_answer(
        429,
        "Too Many Requests",
        errors.ShimError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "TOO_MANY_CONNECTIONS",
            f"this address already holds {cap} connections to this server; close one or retry",
        ),
        f"Retry-After: {RETRY_AFTER_S}\r\n",
    )


class _Tally:
    """Connections cut, logged as one line per interval: an attack of 20,000
    slow connections is a few lines, not 20,000."""

    def __init__(self):
        self._counts: collections.Counter = collections.Counter()
        self._flush: asyncio.TimerHandle | None = None

    def add(self, what: str) -> None:
        self._counts[what] += 1
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(TALLY_INTERVAL_S, self._log)

    def _log(self) -> None:
        self._flush = None
        log("http.connections_cut", level="warning", **dict(self._counts))
        self._counts.clear()


class OpenConnections:
    """Who holds how many connections, for one listening socket."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.tally = _Tally()
        self._open: collections.Counter = collections.Counter()
        self._refusals = {
            cap: too_many_connections(cap) for cap in {limits.per_address, limits.per_loopback}
        }

    def admit(self, peer) -> tuple[str | None, bytes]:
        """(the client's key, b"") when it may have one more connection,
        else (None, the answer that refuses it)."""
        client, loopback = client_of(peer)
        cap = self.limits.per_loopback if loopback else self.limits.per_address
        if cap and self._open[client] >= cap:
            self.tally.add("over_connection_cap")
            return None, self._refusals[cap]
        self._open[client] += 1
        return client, b""

    def release(self, client: str) -> None:
        self._open[client] -= 1
        if self._open[client] <= 0:
            del self._open[client]


class GuardedHandler(web_protocol.RequestHandler):
    """aiohttp's request handler with the header clock and the per-client
    count around it. It reads two of aiohttp's own fields (aiohttp is pinned
    exactly): `_request_count`, which grows when a request's headers have
    been parsed, and `_waiter`, pending while no request is in hand."""

    def __init__(self, manager: web.Server, connections: OpenConnections, **kwargs):
        super().__init__(manager, **kwargs)
        self._connections = connections
        self._client: str | None = None
        self._refused: asyncio.TimerHandle | None = None
        self._header_clock: asyncio.TimerHandle | None = None
        self._header_bytes = False
        self._dropping = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._client, refusal = self._connections.admit(transport.get_extra_info("peername"))
        if self._client is None:
            stream = cast(asyncio.WriteTransport, transport)  # a TCP connection's transport writes
            stream.write(refusal)
            try:
                stream.write_eof()
            except (OSError, RuntimeError, NotImplementedError):
                pass
            self._refused = self._loop.call_later(REFUSED_LINGER_S, transport.close)
            return  # never a request handler: nothing it sends is parsed
        super().connection_made(transport)
        self._start_header_clock()

    def drop_incoming(self) -> None:
        """From now on what the client sends is dropped unread (the rest of
        a body nobody wants): not parsed, not inflated. Reading goes on, so
        a client still sending gets to the end and reads its answer; aiohttp
        closes the connection when it stops or after its lingering time."""
        self._dropping = True
        if self.transport is not None:
            try:
                self.transport.resume_reading()
            except (AttributeError, NotImplementedError, RuntimeError):
                pass

    def data_received(self, data: bytes) -> None:
        if self._client is None or self._dropping:
            return  # refused, or the rest of an unwanted body: dropped unread
        if (
            self._header_clock is None
            and data
            and self._waiter is not None
            and not self._waiter.done()
        ):
            self._start_header_clock()  # the first byte of a kept-alive connection's next request
        if self._header_clock is None:
            super().data_received(data)
            return
        self._header_bytes = self._header_bytes or bool(data)
        parsed = self._request_count
        super().data_received(data)
        if self._request_count != parsed:
            self._stop_header_clock()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._client is None:
            if self._refused is not None:
                self._refused.cancel()
            return
        self._stop_header_clock()
        self._connections.release(self._client)
        super().connection_lost(exc)

    def _start_header_clock(self) -> None:
        self._header_bytes = False
        self._header_clock = self._loop.call_later(
            self._connections.limits.header_timeout_s, self._headers_late
        )

    def _stop_header_clock(self) -> None:
        if self._header_clock is not None:
            self._header_clock.cancel()
            self._header_clock = None

    def _headers_late(self) -> None:
        self._header_clock = None
        if self.transport is None:
            return
        if (
            self._header_bytes
        ):  # a request had begun: say why it ends (a silent connection is just closed)
            self.transport.write(REQUEST_TIMEOUT)
        self._connections.tally.add("header_timeout")
        self.force_close()


class GuardedSite(web.SockSite):
    """aiohttp's SockSite, its connections made by GuardedHandler."""

    def __init__(self, runner: web.BaseRunner, sock, limits: Limits, **kwargs):
        super().__init__(runner, sock, **kwargs)
        self.connections = OpenConnections(limits)

    async def start(self) -> None:
        await web.BaseSite.start(self)  # what SockSite.start does, with our protocol factory
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None  # the runner is set up before its sites start
        handler_kwargs = (
            server._kwargs
        )  # the handler settings the runner was given, as Server() passes them

        def protocol() -> GuardedHandler:
            return GuardedHandler(server, self.connections, loop=loop, **handler_kwargs)

        self._server = await loop.create_server(protocol, sock=self._sock, backlog=self._backlog)
