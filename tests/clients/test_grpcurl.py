"""The grpcurl (and buf curl) commands README shows, run against a live server
through reflection (no proto files given to grpcurl)."""

from __future__ import annotations

import json
import subprocess

from tests.support.server_proc import REPO

from .conftest import API_KEY

GRPCURL = REPO / ".tools" / "bin" / "grpcurl"
AUTH = ["-H", f"authorization: Bearer {API_KEY}"]


def grpcurl(server, *verb, flags=(), check=True):
    """`grpcurl -plaintext FLAGS ADDRESS VERB...`: flags must precede the address."""
    assert GRPCURL.exists(), "run `make grpcurl` first"
    proc = subprocess.run(
        [str(GRPCURL), "-plaintext", *flags, server.grpc_target, *verb],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def json_stream(text: str) -> list[dict]:
    decoder, out, i = json.JSONDecoder(), [], 0
    while (i := len(text) - len(text[i:].lstrip())) < len(text):  # skip whitespace between objects
        obj, i = decoder.raw_decode(text, i)
        out.append(obj)
    return out


def test_list_and_describe(server):
    services = grpcurl(server, "list").stdout.split()
    assert {"codeximage.v1.ImageService", "grpc.health.v1.Health"} <= set(services)
    described = grpcurl(server, "describe", "codeximage.v1.ImageService").stdout
    assert (
        "rpc Generate ( .codeximage.v1.GenerateRequest ) "
        "returns ( stream .codeximage.v1.GenerateResponse )"
    ) in described
    assert (
        "GenerateRequest is a message"
        in grpcurl(server, "describe", "codeximage.v1.GenerateRequest").stdout
    )


def test_streaming_generate(server):
    proc = grpcurl(
        server,
        "codeximage.v1.ImageService/Generate",
        flags=[*AUTH, "-d", '{"prompt": "a red fox", "count": 2}'],
    )
    events = json_stream(proc.stdout)
    assert any("progress" in e for e in events)
    assert sum("image" in e for e in events) == 2
    assert events[-1]["summary"]["status"] == "completed"


def test_health_checks(server):
    assert json.loads(grpcurl(server, "grpc.health.v1.Health/Check").stdout) == {
        "status": "SERVING"
    }
    health = json.loads(grpcurl(server, "codeximage.v1.ImageService/Health", flags=AUTH).stdout)
    assert health["ready"] is True and health["status"] == "ok"


def test_error_details_are_shown(server):
    proc = grpcurl(
        server,
        "codeximage.v1.ImageService/Generate",
        flags=[*AUTH, "-d", '{"count": 9, "size": "banana"}'],
        check=False,
    )
    assert proc.returncode != 0
    assert "InvalidArgument" in proc.stderr and "google.rpc.BadRequest" in proc.stderr
    assert '"reason": "INVALID_SIZE"' in proc.stderr


def test_buf_curl_through_reflection(server):
    """README's buf curl call: reflection (v1, served beside v1alpha) is all it needs."""
    buf = REPO / ".tools" / "buf" / "node_modules" / ".bin" / "buf"
    assert buf.exists(), "run `make buf` first"
    proc = subprocess.run(
        [
            str(buf),
            "curl",
            "--protocol",
            "grpc",
            "--http2-prior-knowledge",
            "-H",
            f"authorization: Bearer {API_KEY}",
            "-d",
            '{"prompt": "a red fox"}',
            f"http://{server.grpc_target}/codeximage.v1.ImageService/Generate",
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json_stream(proc.stdout)[-1]["summary"]["status"] == "completed"


def test_submit_and_wait_as_docs_operations_shows(server):
    """docs/operations.md's grpcurl lines: SubmitGeneration, then the standard Operations
    service."""
    assert "google.longrunning.Operations" in grpcurl(server, "list").stdout.split()
    op = json.loads(
        grpcurl(
            server,
            "codeximage.v1.ImageService/SubmitGeneration",
            flags=[*AUTH, "-d", '{"prompt": "a lighthouse at dusk", "request_id": "lighthouse-1"}'],
        ).stdout
    )
    assert op["name"] == "operations/lighthouse-1"
    done = json.loads(
        grpcurl(
            server,
            "google.longrunning.Operations/WaitOperation",
            flags=[*AUTH, "-d", '{"name": "operations/lighthouse-1", "timeout": "120s"}'],
        ).stdout
    )
    assert done["done"] is True and len(done["response"]["images"]) == 1
    refused = grpcurl(
        server,
        "google.longrunning.Operations/GetOperation",
        check=False,
        flags=["-d", '{"name": "operations/lighthouse-1"}'],
    )
    assert refused.returncode != 0 and "Unauthenticated" in refused.stderr
