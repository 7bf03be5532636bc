"""The web console: static files at `/` and `/console/*`, on the
shim's own origin, so the page calls /v1 with no CORS and the same auth.

The assets are built from web/src by `make console` and checked in, so the
server needs no Node at run time. They are read once at start, kept in
memory with a gzip copy (a few tens of KB), and revalidated by ETag. The page
itself holds no data: it is served without a key, and every /v1 call it
makes carries the key the person typed.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

from aiohttp import web

ASSETS = Path(__file__).with_name("console_assets")
INDEX = "index.html"
PREFIX = "/console/"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
# Everything the page loads comes from this origin; images are blob: URLs
# made from authenticated fetches, references are previewed from data:/blob:.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)


class _Asset:
    def __init__(self, path: Path):
        self.body = path.read_bytes()
        self.gzipped = gzip.compress(self.body, 9, mtime=0)
        self.etag = f'"{hashlib.sha256(self.body).hexdigest()[:32]}"'
        self.content_type = _TYPES.get(path.suffix, "application/octet-stream")


def _load(directory: Path) -> dict[str, _Asset]:
    if not directory.is_dir():
        return {}
    return {
        p.name: _Asset(p) for p in sorted(directory.iterdir()) if p.is_file() and p.suffix in _TYPES
    }


def _serve(request: web.Request, asset: _Asset) -> web.Response:
    headers = {
        "ETag": asset.etag,
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": _CSP,
        "Referrer-Policy": "no-referrer",
        "Vary": "Accept-Encoding",
        "Content-Type": asset.content_type,
    }
    if request.headers.get("If-None-Match", "") == asset.etag:
        return web.Response(
            status=304, headers={k: headers[k] for k in ("ETag", "Cache-Control", "Vary")}
        )
    body = asset.body
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        body, headers["Content-Encoding"] = asset.gzipped, "gzip"
    return web.Response(body=body, headers=headers)


def mount(app: web.Application, directory: Path = ASSETS) -> None:
    """Add `/` and `/console/{name}` ahead of the shim's catch-all dispatcher."""
    assets = _load(directory)

    async def index(request: web.Request) -> web.StreamResponse:
        asset = assets.get(INDEX)
        if asset is None:
            raise web.HTTPNotFound(text="the console was not built: run `make console`")
        return _serve(request, asset)

    async def asset(request: web.Request) -> web.StreamResponse:
        found = assets.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound(text="no such console asset")
        return _serve(request, found)

    app.router.add_get("/", index)
    app.router.add_get(PREFIX + "{name}", asset)
