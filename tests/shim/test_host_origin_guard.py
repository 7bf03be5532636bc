"""Who may ask the HTTP port, over raw sockets against a real server: a
Host that is not an IP literal, localhost or a listed name is a 421; an
Origin that is not the server's own, a UXP plugin's or a listed one is a 403;
a body not declared JSON (multipart only on the OpenAI edits) is a 415; CORS
answers only allowed origins, echoing them. Every refusal is JSON naming the
setting that would allow it, on every surface, and starts no generation
(counted in the request history, not by the answer). The shared `server` is
served in-process (tests/support/inprocess_server.py); what is checked as the
server starts (its warning, its refusals of bad settings) starts a process."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess

import pytest
from codeximage.v1 import image_service_pb2 as pb

from tests.support.inprocess_server import serve_in_process
from tests.support.server_proc import start_server

from .client import png

LISTED_ORIGIN = "https://photos.example"
LISTED_HOST = "images.example"
# One route of each surface: health, /v1, the OpenAI surface, the console, metrics, OpenAPI,
# unknown.
GETS = (
    "/healthz",
    "/v1/capabilities",
    "/v1/images",
    "/v1/models",
    "/",
    "/metrics",
    "/v1/openapi.json",
    "/nope",
)
GENERATE = "/v1/images/generate"
EDITS = "/v1/images/edits"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serve_in_process(
        tmp_path_factory.mktemp("guard"),
        http=True,
        args=["--allowed-origin", LISTED_ORIGIN, "--allowed-host", LISTED_HOST],
    ) as srv:
        yield srv


def raw(port: int, head: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """One request as written (no client fixing it up); (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode() + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head_bytes, _, payload = data.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, payload


def ask(
    server,
    method: str,
    path: str,
    *,
    host: str | None = "default",
    origin: str | None = None,
    content_type: str | None = None,
    body: bytes = b"",
    extra: str = "",
) -> tuple[int, dict, bytes]:
    lines = [f"{method} {path} HTTP/1.1"]
    if host == "default":
        host = f"127.0.0.1:{server.http_port}"
    if host is not None:
        lines.append(f"Host: {host}")
    if origin is not None:
        lines.append(f"Origin: {origin}")
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    return raw(server.http_port, "\r\n".join(lines) + "\r\n" + extra + "\r\n", body)


def requests_in_history(server) -> int:
    return len(
        server.stub().ListRequests(pb.ListRequestsRequest(page_size=1000), timeout=10).requests
    )


def refused_as(reply, status: int, code: str, setting: str) -> dict:
    got, headers, body = reply
    assert got == status, (got, body[:300])
    assert headers["content-type"].startswith("application/json")
    error = json.loads(body)["error"]
    assert error["code"] == code and setting in error["message"], error
    if status in (
        403,
        421,
    ):  # who asked is refused: no grant (a 415 to an allowed page may be read by it)
        assert "access-control-allow-origin" not in headers
    return error


GENERATE_BODY = json.dumps({"prompt": "a fox"}).encode()


# -- Host --------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.0.0.1:{port}",
        "localhost:{port}",
        "LOCALHOST",
        "[::1]:{port}",
        "console.localhost:{port}",
        "10.1.2.3:{port}",
        LISTED_HOST + ":{port}",
        LISTED_HOST.upper(),
    ],
)
def test_hosts_answered(server, host):
    for path in GETS[:2]:
        status, _, body = ask(server, "GET", path, host=host.format(port=server.http_port))
        assert status == 200, (host, path, body[:200])


@pytest.mark.parametrize(
    "host",
    [
        "evil.example:{port}",
        "evil.example",
        "127.0.0.1.nip.io:{port}",
        ":{port}",
        "",
        "localhost.evil.example",
        "0x7f000001:{port}",
        "[::1",
        "127.0.0.1:99999",
    ],
)
def test_other_hosts_get_421_on_every_route(server, host):
    before = requests_in_history(server)
    value = host.format(port=server.http_port) if host is not None else None
    for path in GETS:
        refused_as(ask(server, "GET", path, host=value), 421, "host_not_allowed", "--allowed-host")
    for path, kind in ((GENERATE, "application/json"), (EDITS, "application/json")):
        refused_as(
            ask(server, "POST", path, host=value, content_type=kind, body=GENERATE_BODY),
            421,
            "host_not_allowed",
            "--allowed-host",
        )
    assert requests_in_history(server) == before


def test_two_host_headers_are_refused(server):
    """aiohttp's parser refuses them itself (400) before any route."""
    status, _, body = ask(server, "GET", "/v1/images", extra="Host: evil.example\r\n")
    assert status == 400, body[:200]


def test_without_a_host_nothing_is_answered(server):
    """HTTP/1.0 may omit Host: refused by the guard (an answer's URLs are
    built from it); HTTP/1.1 must not: aiohttp refuses it itself (400)."""
    refused_as(
        raw(server.http_port, "GET /v1/images HTTP/1.0\r\n\r\n"),
        421,
        "host_not_allowed",
        "--allowed-host",
    )
    before = requests_in_history(server)
    status, _, _ = ask(
        server, "POST", GENERATE, host=None, content_type="application/json", body=GENERATE_BODY
    )
    assert status == 400 and requests_in_history(server) == before


# -- Origin ------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "null",
        "http://127.0.0.1:1",
        "https://127.0.0.1:{port}",
        "http://localhost:{port}",
        LISTED_ORIGIN + ":8443",
        "http://photos.example",
        "file://",
        "chrome-extension://abcdef",
        "not an origin",
    ],
)
def test_other_origins_get_403_and_start_nothing(server, origin):
    before = requests_in_history(server)
    value = origin.format(port=server.http_port)
    for path in GETS:
        refused_as(
            ask(server, "GET", path, origin=value), 403, "origin_not_allowed", "--allowed-origin"
        )
    for content_type, body in (("application/json", GENERATE_BODY), ("text/plain", GENERATE_BODY)):
        refused_as(
            ask(server, "POST", GENERATE, origin=value, content_type=content_type, body=body),
            403,
            "origin_not_allowed",
            "--allowed-origin",
        )
    # A preflight from it is no grant either.
    refused_as(
        ask(
            server,
            "OPTIONS",
            GENERATE,
            origin=value,
            extra="Access-Control-Request-Method: POST\r\n",
        ),
        403,
        "origin_not_allowed",
        "--allowed-origin",
    )
    assert requests_in_history(server) == before


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:{port}",
        "uxp://com.example.imageplugin",
        "uxp://uxp-internal",
        LISTED_ORIGIN,
        LISTED_ORIGIN + ":443",
        LISTED_ORIGIN.upper(),
    ],
)
def test_allowed_origins_get_cors_echoed(server, origin):
    value = origin.format(port=server.http_port)
    status, headers, body = ask(server, "GET", "/v1/images", origin=value)
    assert status == 200, body[:200]
    assert headers["access-control-allow-origin"] == value and headers["vary"] == "Origin"
    assert "X-Request-Id" in headers["access-control-expose-headers"]
    status, headers, _ = ask(
        server,
        "OPTIONS",
        GENERATE,
        origin=value,
        extra="Access-Control-Request-Method: POST\r\n"
        "Access-Control-Request-Headers: content-type, x-api-key\r\n"
        "Access-Control-Request-Private-Network: true\r\n",
    )
    assert status == 204 and headers["access-control-allow-origin"] == value
    assert "POST" in headers["access-control-allow-methods"]
    assert "X-API-Key" in headers["access-control-allow-headers"]
    assert headers["access-control-allow-private-network"] == "true"


def test_no_origin_gets_no_cors_grant(server):
    status, headers, _ = ask(server, "GET", "/v1/images")
    assert (
        status == 200
        and headers["vary"] == "Origin"
        and "access-control-allow-origin" not in headers
    )


def test_the_console_page_keeps_its_vary(server):
    status, headers, _ = ask(
        server,
        "GET",
        "/",
        extra="Accept-Encoding: gzip\r\n",
        origin=f"http://127.0.0.1:{server.http_port}",
    )
    assert status == 200 and headers["vary"] == "Accept-Encoding, Origin"


def test_a_listed_host_with_its_own_origin_generates(server):
    """A balancer's public name, and pages on it (the console behind it)."""
    before = requests_in_history(server)
    host = f"{LISTED_HOST}:{server.http_port}"
    status, _, body = ask(
        server,
        "POST",
        GENERATE,
        host=host,
        origin=f"http://{host}",
        content_type="application/json",
        body=GENERATE_BODY,
    )
    assert status == 200, body[:300]
    assert json.loads(body)["data"][0]["url"].startswith(f"http://{host}/v1/images/")
    assert requests_in_history(server) == before + 1


# -- body types ----------------------------------------------------------------


def _multipart(fields: dict[str, str], image: bytes | None) -> tuple[str, bytes]:
    boundary = "guardboundary7"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    if image is not None:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
            f"Content-Type: image/png\r\n\r\n".encode()
            + image
            + b"\r\n"
        )
    return f"multipart/form-data; boundary={boundary}", b"".join(
        parts
    ) + f"--{boundary}--\r\n".encode()


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/octet-stream",
        "text/json",
    ],
)
@pytest.mark.parametrize("origin", [None, "http://127.0.0.1:{port}"])
def test_a_body_not_declared_json_is_415_and_starts_nothing(server, content_type, origin):
    before = requests_in_history(server)
    value = origin.format(port=server.http_port) if origin else None
    for path in (GENERATE, "/v1/images/generations"):
        refused_as(
            ask(server, "POST", path, origin=value, content_type=content_type, body=GENERATE_BODY),
            415,
            "unsupported_media_type",
            "application/json",
        )
    assert requests_in_history(server) == before


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.codex+json",
    ],
)
def test_json_bodies_generate(server, content_type):
    before = requests_in_history(server)
    status, _, body = ask(server, "POST", GENERATE, content_type=content_type, body=GENERATE_BODY)
    assert status == 200, body[:300]
    assert requests_in_history(server) == before + 1


def test_no_content_type_reads_json_only_without_origin(server):
    """curl --data-binary and scripts; a browser always sends Origin with a POST."""
    before = requests_in_history(server)
    status, _, body = ask(server, "POST", GENERATE, body=GENERATE_BODY)
    assert status == 200, body[:300]
    refused_as(
        ask(
            server,
            "POST",
            GENERATE,
            origin=f"http://127.0.0.1:{server.http_port}",
            body=GENERATE_BODY,
        ),
        415,
        "unsupported_media_type",
        "application/json",
    )
    assert requests_in_history(server) == before + 1


def test_multipart_is_taken_on_the_edits_only(server):
    before = requests_in_history(server)
    kind, body = _multipart({"prompt": "make it blue", "model": "gpt-image-2"}, png(8, 8))
    status, _, answer = ask(server, "POST", EDITS, content_type=kind, body=body)
    assert status == 200, answer[:300]
    status, _, answer = ask(
        server, "POST", EDITS, content_type=kind, body=body, origin=LISTED_ORIGIN
    )
    assert status == 200, answer[:300]
    refused_as(
        ask(server, "POST", EDITS, content_type=kind, body=body, origin="http://evil.example"),
        403,
        "origin_not_allowed",
        "--allowed-origin",
    )
    refused_as(
        ask(server, "POST", GENERATE, content_type=kind, body=body),
        415,
        "unsupported_media_type",
        "application/json",
    )
    assert requests_in_history(server) == before + 2


# -- the gRPC port -------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/plain", "application/grpc"])
def test_a_browser_style_post_to_the_grpc_port_starts_nothing(server, content_type):
    """grpcio speaks HTTP/2 only: an HTTP/1.1 request (all a page can send
    there) is not a call. What comes back is not an HTTP/1 answer a page
    could read, and no generation starts."""
    before, runs = requests_in_history(server), len(server.fake_runs())
    request = (
        "POST /codeximage.v1.ImageService/Generate HTTP/1.1\r\nHost: "
        f"127.0.0.1:{server.grpc_port}\r\n"
        f"Origin: http://evil.example\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(GENERATE_BODY)}\r\n\r\n"
    ).encode() + GENERATE_BODY
    with socket.create_connection(("127.0.0.1", server.grpc_port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    # The connection is over (closed by the server): nothing of it can still be starting.
    assert not data.startswith(b"HTTP/1"), data[:200]
    assert requests_in_history(server) == before and len(server.fake_runs()) == runs


# -- settings ------------------------------------------------------------------


def test_a_wildcard_origin_is_an_opt_in_that_is_warned_about(tmp_path):
    with start_server(tmp_path, http=True, env={"CODEX_IMAGE_SERVER_ALLOWED_ORIGINS": "*"}) as srv:
        status, headers, _ = ask(srv, "GET", "/v1/images", origin="https://anywhere.example")
        assert (
            status == 200 and headers["access-control-allow-origin"] == "https://anywhere.example"
        )
        refused_as(
            ask(srv, "GET", "/v1/images", origin="null"),
            403,
            "origin_not_allowed",
            "--allowed-origin",
        )
        assert any(
            "allowed_origins" in line and "every web page" in line
            for line in srv.log_text().splitlines()
        )


@pytest.mark.parametrize(
    "flag,value",
    [
        ("--allowed-origin", "https://x.example/path"),
        ("--allowed-origin", "x.example"),
        ("--allowed-host", "http://x.example"),
        ("--allowed-host", "x.example:80"),
        ("--codex-env-allow", "*"),
        ("--codex-env-allow", "A-B"),
    ],
)
def test_bad_settings_are_refused_at_start(tmp_path, flag, value):
    with pytest.raises(RuntimeError, match=flag.lstrip("-").replace("-", "_")):
        with start_server(tmp_path, http=True, args=[flag, value]):
            pass


# -- curl ------------------------------------------------------------------------


def test_curl_keeps_working(server):
    """The real curl, as the docs show it (it sends no Origin)."""
    curl = shutil.which("curl")
    assert curl, "curl is not installed"
    base = server.http_base

    def run(*args: str) -> tuple[int, dict]:
        done = subprocess.run(
            [curl, "-s", "-o", "-", "-w", "\n%{http_code}", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        body, _, code = done.stdout.rpartition("\n")
        return int(code), json.loads(body)

    before = requests_in_history(server)
    assert run(f"{base}/healthz")[0] == 200
    status, answer = run(
        "-H",
        "Content-Type: application/json",
        "-d",
        '{"prompt":"a red fox"}',
        f"{base}/v1/images/generate",
    )
    assert status == 200 and answer["status"] == "completed", answer
    # curl's -d alone says application/x-www-form-urlencoded: refused, saying what to send.
    status, answer = run("-d", '{"prompt":"a red fox"}', f"{base}/v1/images/generate")
    assert status == 415 and "application/json" in answer["error"]["message"], answer
    assert requests_in_history(server) == before + 1
