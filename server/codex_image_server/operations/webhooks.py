"""Webhooks: when a detached generation ends, its outcome is POSTed to the
caller's `webhook_url`, signed per the Standard Webhooks specification
(`webhook-id`, `webhook-timestamp`, `webhook-signature`: "v1," + base64 of
HMAC-SHA256 over "{id}.{timestamp}.{body}" with the `whsec_` secret's bytes).

A webhook is a request this server makes on a caller's word, so where it may
go is the operator's choice (SSRF): loopback addresses by default, any other
host only when listed (--webhook-allow). The check is made on the addresses
the name resolves to, at submit and again at each attempt, and the request
goes to the address that was checked (no second lookup to rebind).
Redirects are not followed. Failed attempts are retried with backoff for a
bounded time; each attempt is recorded with the operation (its metadata's
`webhook`: status, attempts, the last answer) and in the log
(`webhook.attempt`).

A webhook owed is in the store, not only in the server sending it: the
operation's end marks it due, and each attempt moves the time by which its
sender writes again. A server that stopped or died mid-retries leaves it
due; any server (this one after a restart, or another replica) takes it
over once that time passed and goes on with the same message id, attempts
and deadline. (A Generate's webhook has no operation row: its retries live
in its server alone.)
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import http.client
import ipaddress
import json
import secrets
import socket
import ssl
import time
import urllib.parse

from codex_image_server.errors import FieldViolation, invalid
from codex_image_server.runtime.logs import log

EVENTS = {
    "succeeded": "generation.succeeded",
    "failed": "generation.failed",
    "cancelled": "generation.cancelled",
}
ATTEMPT_TIMEOUT_S = 10.0
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 60.0
SECRET_PREFIX = "whsec_"
# A sender writes again within its next wait plus one attempt, plus this slack;
# later, it is taken for gone. How often a server looks for such webhooks.
HOLD_SLACK_S = 2.0
RESUME_EVERY_S = 2.0
# What the operation's metadata shows of a delivery (the rest is the sender's state).
SHOWN = ("status", "attempts", "last_status_code", "last_error")


def due_unix_ms(wait_s: float = 0.0) -> int:
    """When a sender that waits `wait_s` before its next attempt must have written again."""
    return int((time.time() + wait_s + ATTEMPT_TIMEOUT_S + HOLD_SLACK_S) * 1000)


def _backoff_s(attempts: int) -> float:
    return min(FIRST_BACKOFF_S * 2 ** max(0, attempts - 1), MAX_BACKOFF_S)


def secret_bytes(secret: str) -> bytes:
    """The key inside a `whsec_…` secret; ValueError when it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with whsec_ (then base64)")
    key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    if len(key) < 16:
        raise ValueError("a webhook secret needs at least 16 bytes after whsec_")
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def _bad_url(description: str):
    return invalid([FieldViolation("webhook_url", description, "WEBHOOK_NOT_ALLOWED")])


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, address: str, port: int, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, address: str, port: int, timeout: float):
        self._tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._tls)
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


class Webhooks:
    def __init__(self, secret: str, allow: tuple[str, ...], retry_s: float, metadata, render):
        """`render(record)`: the operation as a JSON-ready dict (the wire's own form)."""
        self._key = secret_bytes(secret) if secret else None
        self._allow = {h.lower() for h in allow}
        self._retry_s = retry_s
        self._metadata = metadata
        self._render = render
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task] = set()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        if self._key is not None:
            self._spawn_task(self._resume())

    def stop(self) -> None:
        """Retries stop here; what is owed stays due in the store (see above)."""
        for task in list(self._tasks):
            task.cancel()

    async def _resume(self) -> None:
        """Webhooks whose sender stopped writing (stopped, died): taken over."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                while (
                    record := await loop.run_in_executor(
                        None, self._metadata.claim_webhook, int(time.time() * 1000), due_unix_ms()
                    )
                ) is not None:
                    log("webhook.resumed", request_id=record.request_id)
                    self._spawn(record)
            except Exception as exc:  # noqa: BLE001 - the database away: look again later
                log("webhook.resume_failed", level="warning", error_type=type(exc).__name__)
            await asyncio.sleep(RESUME_EVERY_S)

    def _destination(self, url: str) -> tuple[urllib.parse.SplitResult, str]:
        """Blocking (DNS). The parsed URL and the address to send to; refused with a field
        violation."""
        try:
            parts = urllib.parse.urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise _bad_url("not a URL") from None
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.username
            or parts.password
        ):
            raise _bad_url("must be an http:// or https:// URL with a host and no user or password")
        host = parts.hostname.lower()
        try:
            addresses = [
                str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            ]
        except (OSError, UnicodeError):
            raise _bad_url(f"the host {host!r} does not resolve") from None
        listed = host in self._allow
        for address in addresses:
            if not listed and not ipaddress.ip_address(address.split("%")[0]).is_loopback:
                raise _bad_url(
                    f"the host {host!r} is not one this server may call: only loopback addresses, "
                    "and hosts the operator lists with --webhook-allow"
                )
        return parts, addresses[0]

    def check(self, url: str) -> None:
        """At submit (blocking): a webhook this server would not send is refused now."""
        if not url:
            return
        if len(url) > 2048:
            raise _bad_url("at most 2048 characters")
        if self._key is None:
            raise _bad_url(
                "this server has no webhook secret (--webhook-secret), so it sends no webhooks"
            )
        self._destination(url)

    def deliver(self, record) -> None:
        """From any thread: send the ended operation's outcome (in the background)."""
        if self._loop is None or self._key is None or not record.webhook_url:
            return
        self._loop.call_soon_threadsafe(self._spawn, record)

    def _spawn(self, record) -> None:
        self._spawn_task(self._send(record))

    def _spawn_task(self, coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, record) -> None:
        body = json.dumps(
            {
                "type": EVENTS.get(record.state, "generation.failed"),
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "data": self._render(record),
            },
            separators=(",", ":"),
        ).encode()
        # Taken over from a server that stopped: the same message (id), attempts and deadline.
        sent = json.loads(record.webhook) if record.webhook else {}
        msg_id = sent.get("msg_id") or "msg_" + secrets.token_hex(12)  # the same for every retry
        attempts = int(sent.get("attempts", 0))
        deadline_ms = int(
            sent.get("deadline_unix_ms")
            or (record.ended_unix_ms or time.time() * 1000) + self._retry_s * 1000
        )
        loop = asyncio.get_running_loop()
        while True:
            attempts += 1
            code, error = await loop.run_in_executor(
                None, self._attempt, record.webhook_url, msg_id, body
            )
            backoff = _backoff_s(attempts)
            status = (
                "delivered"
                if 200 <= code < 300
                else "pending"
                if (time.time() + backoff) * 1000 < deadline_ms
                else "failed"
            )
            await loop.run_in_executor(
                None,
                self._metadata.set_operation_webhook,
                record.request_id,
                json.dumps(
                    {
                        "status": status,
                        "attempts": attempts,
                        "last_status_code": code,
                        "last_error": error,
                        "msg_id": msg_id,
                        "deadline_unix_ms": deadline_ms,
                    }
                ),
                due_unix_ms(backoff) if status == "pending" else 0,
            )
            log(
                "webhook.attempt",
                request_id=record.request_id,
                attempt=attempts,
                status_code=code,
                outcome=status,
                error=error,
            )
            if status != "pending":
                return
            await asyncio.sleep(backoff)

    def _attempt(self, url: str, msg_id: str, body: bytes) -> tuple[int, str]:
        """One POST (blocking): (HTTP status, "") or (0, why it failed)."""
        try:
            parts, address = self._destination(url)
        except Exception as exc:  # noqa: BLE001 - its reason is recorded, the attempt counted
            return 0, getattr(exc, "message", type(exc).__name__)[:200]
        # deliver() sends nothing without a key, _destination() nothing without a host.
        assert self._key is not None and parts.hostname is not None
        timestamp = int(time.time())
        port = parts.port or (443 if parts.scheme == "https" else 80)
        make = _PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP
        conn = make(parts.hostname, address, port, ATTEMPT_TIMEOUT_S)
        try:
            conn.request(
                "POST",
                (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                body=body,
                headers={
                    "Content-Type": "application/json",
                    "webhook-id": msg_id,
                    "webhook-timestamp": str(timestamp),
                    "webhook-signature": sign(self._key, msg_id, timestamp, body),
                    "User-Agent": "codex-image-server",
                },
            )
            response = conn.getresponse()
            response.read(64 * 1024)
            return response.status, ""
        except (OSError, http.client.HTTPException) as exc:
            return 0, type(exc).__name__
        finally:
            conn.close()
