"""Who may ask the HTTP port: the one check of Host, Origin and body type,
and the CORS headers that follow from it, for every route of the app (an
aiohttp middleware) and for the fixed answers' fast path (fixed.py).

A loopback server without a key is reachable from every web page the user
opens. Three rules keep pages out while leaving non-browser clients alone:
- Host (DNS rebinding): a page on `evil.example` that re-resolves its name
  to 127.0.0.1 still sends `Host: evil.example`. Only IP literals,
  `localhost`, `*.localhost` and names the operator lists are answered
  (421 otherwise, and for an empty or port-only Host).
- Origin (CSRF): browsers send Origin on every cross-site request that can
  change something (and on every CORS read); a page cannot forge it. One
  that is not the server's own (the console), not listed, and not a UXP
  plugin's (`uxp://...`, which no browser can send) is a 403, as is
  `Origin: null` (sandboxed frames, file pages) unless listed. Requests
  without Origin (curl, SDKs, the plugin in Node/UXP) pass.
- Body type: a body must be declared JSON (`application/json`, `*/*+json`);
  `multipart/form-data` only on the paths that take it (the OpenAI edits).
  text/plain, forms and multipart are what a page may send without a
  preflight. A body with no Content-Type is read as JSON only from a caller
  that sends no Origin (a script), never from a browser.
"""

from __future__ import annotations

import ipaddress

from aiohttp import hdrs, web
from codex_image_server.runtime.logs import log

from . import errors

EXPOSED = "Content-Length, Content-Type, ETag, Retry-After, X-Request-Id, X-Codex-Image-Ignored"
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, HEAD, POST, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Accept, Authorization, X-API-Key, X-Request-Id",
    "Access-Control-Max-Age": "600",
}
PLUGIN_SCHEME = "uxp"  # Photoshop's UXP runtime; see docs/security.md
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_CACHE_LIMIT = 256


def split_host(value: str) -> tuple[str, int | None] | None:
    """`name`, `name:port`, `v4:port` or `[v6]:port` -> (host lower-cased, port); None if
    malformed."""
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:] if rest else None
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep:
            host, port_text = value, None
        if ":" in host:  # an IPv6 literal must be in brackets
            return None
    if not host:
        return None
    port = None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            return None
        port = int(port_text)
    return host.lower(), port


def _ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def origin_key(origin: str) -> tuple[str, str, int | None] | None:
    """An origin as (scheme, host, port with the default filled in); None
    when it is not `scheme://host[:port]`."""
    scheme, sep, rest = origin.partition("://")
    if not sep or not scheme.isalpha() or any(c in rest for c in "/?#@ "):
        return None
    split = split_host(rest)
    if split is None:
        return None
    host, port = split
    scheme = scheme.lower()
    return scheme, host, port if port is not None else _DEFAULT_PORTS.get(scheme)


class Guard:
    def __init__(self, allowed_hosts=(), allowed_origins=(), multipart_paths=()):
        self.hosts = frozenset(h.strip().lower().rstrip(".") for h in allowed_hosts if h.strip())
        listed = {o.strip() for o in allowed_origins if o.strip()}
        self.any_origin = "*" in listed
        self.null_origin = "null" in listed
        self.origins = frozenset(k for k in (origin_key(o) for o in listed - {"*", "null"}) if k)
        self.multipart_paths = frozenset(multipart_paths)
        # Verdicts by header value: a client sends the same few again and again.
        self._hosts_seen: dict[str, bool] = {}
        self._origins_seen: dict[tuple[str, str, str], bool] = {}
        if self.any_origin:
            log(
                "http.any_origin_allowed",
                level="warning",
                message="allowed_origins has '*': every web page the user opens "
                "may call this server",
            )
        if self.null_origin:
            log(
                "http.null_origin_allowed",
                level="warning",
                message="allowed_origins has 'null': sandboxed frames and local files "
                "may call this server",
            )

    # -- the checks -----------------------------------------------------------

    def host_allowed(self, value: str) -> bool:
        known = self._hosts_seen.get(value)
        if known is None:
            split = split_host(value)
            host = split[0].rstrip(".") if split else ""
            known = bool(host) and (
                _ip_literal(host)
                or host == "localhost"
                or host.endswith(".localhost")
                or host in self.hosts
            )
            if len(self._hosts_seen) >= _CACHE_LIMIT:
                self._hosts_seen.clear()
            self._hosts_seen[value] = known
        return known

    def origin_allowed(self, origin: str, scheme: str, host: str) -> bool:
        known = self._origins_seen.get((origin, scheme, host))
        if known is None:
            known = self._origin_verdict(origin, scheme, host)
            if len(self._origins_seen) >= _CACHE_LIMIT:
                self._origins_seen.clear()
            self._origins_seen[(origin, scheme, host)] = known
        return known

    def _origin_verdict(self, origin: str, scheme: str, host: str) -> bool:
        if origin == "null":
            return self.null_origin
        key = origin_key(origin)
        if key is None:
            return False
        if self.any_origin or key in self.origins or key[0] == PLUGIN_SCHEME:
            return True
        return key == origin_key(f"{scheme}://{host}")  # the server's own page: the console

    def refusal(self, request: web.BaseRequest) -> errors.ShimError | None:
        """Why this request is refused, or None. The one check."""
        refused = self._source_refusal(request)
        if refused is None and request.body_exists:
            return self._body_refusal(request, hdrs.ORIGIN in request.headers)
        return refused

    def _source_refusal(self, request: web.BaseRequest) -> errors.ShimError | None:
        """Host, then Origin: who is asking, whatever they send."""
        headers = request.headers
        hosts = headers.getall(hdrs.HOST, ())
        if len(hosts) != 1 or not self.host_allowed(hosts[0]):
            return errors.host_not_allowed(hosts[0] if len(hosts) == 1 else "")
        origins = headers.getall(hdrs.ORIGIN, ())
        if origins and (
            len(origins) > 1 or not self.origin_allowed(origins[0], request.scheme, hosts[0])
        ):
            return errors.origin_not_allowed(origins[0])
        return None

    def _body_refusal(self, request: web.BaseRequest, has_origin: bool) -> errors.ShimError | None:
        if hdrs.CONTENT_TYPE not in request.headers:
            return (
                errors.unsupported_media_type("", self._multipart(request)) if has_origin else None
            )
        kind = request.content_type
        if kind == "application/json" or kind.endswith("+json"):
            return None
        if kind == "multipart/form-data" and self._multipart(request):
            return None
        return errors.unsupported_media_type(kind, self._multipart(request))

    def _multipart(self, request: web.BaseRequest) -> bool:
        return request.path in self.multipart_paths

    # -- CORS -----------------------------------------------------------------

    def cors_headers(self, request: web.BaseRequest) -> list[tuple[str, str]]:
        """`Vary: Origin` always (the answer depends on it); the origin
        echoed, never `*`, only for a request the check lets through."""
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is None or self._source_refusal(request) is not None:
            return [("Vary", "Origin")]
        return [
            ("Vary", "Origin"),
            ("Access-Control-Allow-Origin", origin),
            ("Access-Control-Expose-Headers", EXPOSED),
        ]

    @staticmethod
    def preflight_headers(request: web.BaseRequest) -> dict[str, str]:
        headers = dict(PREFLIGHT_HEADERS)
        # Chrome's Private Network Access: a listed public site calling loopback asks this too.
        if request.headers.get("Access-Control-Request-Private-Network", "").lower() == "true":
            headers["Access-Control-Allow-Private-Network"] = "true"
        return headers

    def add_cors(self, request: web.BaseRequest, headers) -> None:
        for name, value in self.cors_headers(request):
            if name == "Vary" and "Vary" in headers:
                if "origin" not in headers["Vary"].lower():
                    headers["Vary"] = f"{headers['Vary']}, Origin"
            else:
                headers.setdefault(name, value)
