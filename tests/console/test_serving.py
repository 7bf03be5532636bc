"""The console's files as the shim serves them (no browser): at `/` and
`/console/*` beside /v1, compressed, cached by ETag, locked down by CSP, and
the checked-in build matching web/src."""

from __future__ import annotations

import gzip
import re

from tests.clients.test_generated import make
from tests.shim.client import request
from tests.shim.conftest import KEY
from tests.support.server_proc import REPO

ASSETS = REPO / "server" / "codex_image_shim" / "console_assets"


def test_index_and_every_module_it_loads(open_server):
    page = request(open_server.http_base, "GET", "/")
    assert page.status == 200
    assert page.header("Content-Type") == "text/html; charset=utf-8"
    assert "script-src 'self'" in page.header("Content-Security-Policy")
    assert "frame-ancestors 'none'" in page.header("Content-Security-Policy")
    html = page.body.decode()
    assert '<script type="module" src="/console/main.js">' in html
    # Every module the page imports, directly or through others, is served as JavaScript.
    pending, seen = ["main.js"], set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        reply = request(open_server.http_base, "GET", f"/console/{name}")
        assert reply.status == 200, name
        assert reply.header("Content-Type") == "text/javascript; charset=utf-8"
        pending += re.findall(r'from "\./([\w.-]+\.js)"', reply.body.decode())
    assert {"api.js", "generate.js", "history.js", "status.js"} <= seen
    css = request(open_server.http_base, "GET", "/console/style.css")
    assert css.status == 200 and css.header("Content-Type") == "text/css; charset=utf-8"


def test_gzip_etag_and_missing_assets(open_server):
    plain = request(open_server.http_base, "GET", "/console/generate.js")
    zipped = request(
        open_server.http_base, "GET", "/console/generate.js", headers={"Accept-Encoding": "gzip"}
    )
    assert zipped.header("Content-Encoding") == "gzip"
    assert gzip.decompress(zipped.body) == plain.body == (ASSETS / "generate.js").read_bytes()
    assert len(zipped.body) < len(plain.body) / 2
    again = request(
        open_server.http_base,
        "GET",
        "/console/generate.js",
        headers={"If-None-Match": plain.header("ETag")},
    )
    assert again.status == 304 and again.body == b""
    assert request(open_server.http_base, "GET", "/console/nope.js").status == 404
    assert request(open_server.http_base, "GET", "/console/../app.py").status == 404


def test_api_routes_are_unchanged_beside_the_console(open_server):
    assert request(open_server.http_base, "GET", "/v1/capabilities").json()["max_images"] == 4
    missing = request(open_server.http_base, "GET", "/nope")
    assert missing.status == 404 and missing.json()["error"]["code"] == "not_found"
    assert request(open_server.http_base, "OPTIONS", "/v1/images/generate").status == 204


def test_with_a_key_the_page_is_open_and_the_api_is_not(keyed_server):
    # The page holds no data; everything it shows comes from /v1 with the key.
    assert request(keyed_server.http_base, "GET", "/").status == 200
    assert request(keyed_server.http_base, "GET", "/v1/capabilities").status == 401
    assert (
        request(
            keyed_server.http_base, "GET", "/v1/capabilities", headers={"X-API-Key": KEY}
        ).status
        == 200
    )


def test_checked_in_console_matches_web_src():
    assert "console assets match web/src" in make("check-console").stdout
