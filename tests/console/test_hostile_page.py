"""A hostile web page in real Chromium against a loopback server without a
key. Chromium maps `evil.example` and `friend.example` to 127.0.0.1
(--host-resolver-rules, as DNS does for an attacker's name); the pages come
from a tiny HTTP server on 127.0.0.1. The hostile page's no-cors POSTs
(text/plain, multipart, a typeless Blob) start no generation, counted in the
request history through the API; it cannot read /v1/images, neither
cross-origin nor after DNS rebinding (its own origin on the server's port).
A listed origin and a listed host keep working, and so does the console."""

from __future__ import annotations

import http.server
import threading

import pytest
from codeximage.v1 import image_service_pb2 as pb

from tests.support import procs
from tests.support.browser import chromium, missing_binaries
from tests.support.server_proc import start_server

PAGE = b"<!doctype html><title>a page</title><p>nothing to see</p>"


class _Pages(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def pages():
    """The port of a tiny page server on 127.0.0.1 (the hostile and the friendly site)."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, pages):
    with start_server(
        tmp_path_factory.mktemp("hostile-page"),
        http=True,
        args=[
            "--allowed-origin",
            f"http://friend.example:{pages}",
            "--allowed-host",
            "friend.example",
        ],
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if missing_binaries():
        pytest.fail(
            f"{missing_binaries()} missing: run `make chromium` (Debian's chromium and "
            "chromium-driver)"
        )
    driver = chromium(
        tmp_path_factory.mktemp("chromium-hostile"),
        extra_flags=(
            "--host-resolver-rules=MAP evil.example 127.0.0.1, MAP friend.example 127.0.0.1",
        ),
    )
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def history(server) -> int:
    return len(
        server.stub().ListRequests(pb.ListRequestsRequest(page_size=1000), timeout=10).requests
    )


def access(server, status: int) -> list[tuple[str, str]]:
    return [
        (r["method"], r["path"])
        for r in server.log_records()
        if r.get("event") == "http.access" and r.get("status") == status
    ]


def run(browser, script: str, *args):
    """An async script in the current page: `done(value)` is the last argument."""
    return browser.execute_async_script(
        "const done = arguments[arguments.length - 1];\n" + script, *args
    )


NO_CORS_POSTS = """
const [base] = arguments;
const body = JSON.stringify({prompt: "burn the quota"});
const form = new FormData();
form.append("prompt", "burn the quota");
form.append("image", new Blob([new Uint8Array([137, 80, 78, 71])], {type: "image/png"}), "a.png");
const sent = [];
for (const [path, init] of [
    ["/v1/images/generate", {headers: {"Content-Type": "text/plain"}, body}],
    ["/v1/images/generations", {headers: {"Content-Type": "text/plain"}, body}],
    ["/v1/images/generate", {body: new Blob([body])}],
    ["/v1/images/edits", {body: form}],
    ["/v1/images/generate", {body: new URLSearchParams({prompt: "x"})}],
]) {
    try {
        const r = await fetch(base + path, {method: "POST", mode: "no-cors", ...init});
        sent.push(r.type);
    } catch (e) { sent.push("error: " + e); }
}
done(sent);
"""

READ = """
const [url] = arguments;
try {
    const r = await fetch(url);
    done({status: r.status, body: (await r.text()).slice(0, 400)});
} catch (e) { done({error: String(e)}); }
"""


def test_a_hostile_pages_simple_posts_start_nothing(server, pages, browser):
    list(server.stub().Generate(pb.GenerateRequest(prompt="one image to steal"), timeout=60))
    before, refused_before = history(server), len(access(server, 403))
    browser.get(f"http://evil.example:{pages}/")
    assert browser.execute_script("return location.origin") == f"http://evil.example:{pages}"
    sent = run(browser, "(async () => {" + NO_CORS_POSTS + "})()", server.http_base)
    assert sent == ["opaque"] * 5, sent  # the browser sent them all ...
    # ... the server saw each of them and refused it (the log line comes as the answer ends) ...
    assert procs.wait_until(lambda: len(access(server, 403)) >= refused_before + 5, timeout=10), (
        access(server, 403)
    )
    assert history(server) == before  # ... and no generation started


def test_a_hostile_page_cannot_read_the_history(server, pages, browser):
    browser.get(f"http://evil.example:{pages}/")
    read = run(browser, "(async () => {" + READ + "})()", server.http_base + "/v1/images")
    assert "error" in read and "Failed to fetch" in read["error"], read  # CORS: no grant


def test_nor_by_dns_rebinding(server, browser):
    """Once evil.example resolves to 127.0.0.1 the page's own origin is on the
    server's port: its fetches are same-origin, without Origin. The Host is
    what gives it away."""
    browser.get(f"http://evil.example:{server.http_port}/")
    assert "host_not_allowed" in browser.page_source
    for path in ("/v1/images", "/v1/requests", "/healthz", "/"):
        read = run(browser, "(async () => {" + READ + "})()", path)
        assert read.get("status") == 421 and "host_not_allowed" in read["body"], (path, read)
    images = server.stub().ListImages(pb.ListImagesRequest(), timeout=10).images
    assert images
    read = run(browser, "(async () => {" + READ + "})()", f"/v1/images/{images[0].id}/file")
    assert read.get("status") == 421, read


def test_a_listed_origin_reads_and_generates(server, pages, browser):
    browser.get(f"http://friend.example:{pages}/")
    before = history(server)
    read = run(browser, "(async () => {" + READ + "})()", server.http_base + "/v1/images")
    assert read.get("status") == 200 and '"images"' in read["body"], read
    made = run(
        browser,
        """(async () => {
        const [base] = arguments;
        const r = await fetch(base + "/v1/images/generate", {method: "POST",
            headers: {"Content-Type": "application/json"},
            body: JSON.stringify({prompt: "a friendly fox"})});
        done({status: r.status, ids: (await r.json()).data.map(d => d.id)});
    })()""",
        server.http_base,
    )
    assert made["status"] == 200 and len(made["ids"]) == 1, made
    assert history(server) == before + 1


def test_the_console_on_a_listed_host(server, browser):
    """The console behind a listed name (a balancer's public name, say)."""
    browser.get(f"http://friend.example:{server.http_port}/")
    assert procs.wait_until(
        lambda: browser.execute_script("return document.body.dataset.ready === 'true'"), timeout=30
    )
    read = run(browser, "(async () => {" + READ + "})()", "/v1/capabilities")
    assert read.get("status") == 200 and "gpt-image-2" in read["body"], read
