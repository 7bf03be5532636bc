"""The Photoshop plugin's flow end to end through the shim, with a key.
Served in-process (tests/support/inprocess_server.py)."""

from __future__ import annotations

import hashlib

from codeximage.v1 import image_service_pb2 as pb
from google.api import annotations_pb2

from .client import data_url, png, request
from .conftest import KEY

IN_PROCESS = True  # its servers: see conftest.py

PLUGIN_HEADERS = {"X-API-Key": KEY}


def test_capabilities_as_the_smoke_test_reads_them(keyed_server):
    reply = request(keyed_server.http_base, "GET", "/v1/capabilities", headers=PLUGIN_HEADERS)
    assert reply.status == 200
    assert reply.header("Content-Type").startswith("application/json")
    caps = reply.json()
    assert caps["model"] == "gpt-image-2"
    assert caps["max_images"] == 4
    assert caps["references"]["mode"] == "original_image"
    assert caps["auth_required"] is True
    assert caps["output_formats"] == ["png", "jpeg", "webp"]
    assert caps["qualities"] == ["auto", "high", "medium", "low"]
    assert {"auto", "1K", "2K", "4K", "1024x1024"} <= set(caps["size_options"])
    assert "16:9" in caps["ratio_options"]
    # int64 fields are JSON numbers, as the plugin compares them.
    assert caps["size_constraints"]["max_pixels"] == 8294400
    assert isinstance(caps["generation_timeout_ms"], int)
    assert caps["high_resolution_presets"]["landscape"] == "3840x2160"


def test_generate_with_references_then_fetch_every_url(keyed_server):
    refs = [
        {
            "image": data_url(png(64, 48, (200, 0, 0))),
            "label": "layer 1",
            "source": "layer",
            "width": 64,
            "height": 48,
        },
        {
            "image": data_url(png(32, 32, (0, 200, 0))),
            "label": "style",
            "source": "document",
            "width": 32,
            "height": 32,
        },
    ]
    body = {
        "prompt": "a red fox",
        "n": 2,
        "size": "1024x1024",
        "quality": "high",
        "output_format": "png",
        "references": refs,
        "model": "gpt-image-2",
        "return": "file",
    }
    reply = request(
        keyed_server.http_base, "POST", "/v1/images/generate", body, headers=PLUGIN_HEADERS
    )
    assert reply.status == 200, reply.body
    result = reply.json()
    assert result["status"] == "completed"
    assert result["model"] == "gpt-image-2"
    assert result["backend"] == "codex-exec"
    assert result["requested_size"] == "1024x1024"
    assert result["quality"] == "high"
    assert result["id"]
    assert [item["label"] for item in result["data"]] == ["Candidate 1", "Candidate 2"]
    for item in result["data"]:
        assert item["url"] == f"{keyed_server.http_base}/v1/images/{item['id']}/file"
        # The size asked for, made from the fake's 256x256: its real size, and the
        # native size is kept.
        assert item["resolved_size"] == f"{item['width']}x{item['height']}" == "1024x1024"
        assert (item["native_width"], item["native_height"]) == (256, 256)
        assert item["resized"] and item["enlarged"]
        assert [(u["index"], u["usage"], u["label"], u["source"]) for u in item["references"]] == [
            (0, "original", "layer 1", "layer"),
            (1, "original", "style", "document"),
        ]
        got = request(keyed_server.http_base, "GET", item["url"], headers=PLUGIN_HEADERS)
        assert got.status == 200
        assert got.header("Content-Type") == item["mime_type"] == "image/png"
        assert int(got.header("Content-Length")) == len(got.body) == item["byte_size"]
        assert hashlib.sha256(got.body).hexdigest() == item["sha256"]
        assert got.header("ETag") == f'"{item["sha256"]}"'
        assert got.body.startswith(b"\x89PNG")
        head = request(keyed_server.http_base, "HEAD", item["url"], headers=PLUGIN_HEADERS)
        assert head.status == 200 and head.body == b""
        assert head.header("Content-Length") == got.header("Content-Length")
        assert head.header("Content-Type") == "image/png"
        assert head.header("ETag") == got.header("ETag")
        meta = request(
            keyed_server.http_base, "GET", f"/v1/images/{item['id']}", headers=PLUGIN_HEADERS
        )
        assert meta.status == 200 and meta.json()["image"]["sha256"] == item["sha256"]
        # resolved_size means the same in the generate answer and in GET /v1/images/{id}.
        assert meta.json()["image"]["resolved_size"] == item["resolved_size"]


def test_bearer_key_jpg_alias_and_base64_family(keyed_server):
    body = {
        "prompt": "a boat",
        "count": 1,
        "output_format": "jpg",
        "size": "1K",
        "ratio": "16:9",
        "reference_images_base64": [data_url(png(8, 8))[len("data:image/png;base64,") :]],
        "reference_image_base64": data_url(png(4, 4)),
    }
    reply = request(
        keyed_server.http_base,
        "POST",
        "/v1/images/generate",
        body,
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert reply.status == 200, reply.body
    (item,) = reply.json()["data"]
    assert item["mime_type"] == "image/jpeg"
    assert item["aspect"] == "16:9"
    got = request(
        keyed_server.http_base, "GET", item["url"], headers={"Authorization": f"Bearer {KEY}"}
    )
    assert got.status == 200 and got.header("Content-Type") == "image/jpeg"
    assert got.body.startswith(b"\xff\xd8") and len(got.body) == item["byte_size"]


def test_urls_follow_the_callers_host(open_server):
    port = open_server.http_port
    reply = request(
        open_server.http_base,
        "POST",
        "/v1/images/generate",
        {"prompt": "x"},
        headers={"Host": f"localhost:{port}"},
    )
    assert reply.status == 200, reply.body
    url = reply.json()["data"][0]["url"]
    assert url.startswith(f"http://localhost:{port}/v1/images/img_")
    assert request(open_server.http_base, "GET", url).status == 200


def test_if_none_match_gives_304(open_server):
    item = request(open_server.http_base, "POST", "/v1/images/generate", {"prompt": "x"}).json()[
        "data"
    ][0]
    reply = request(
        open_server.http_base, "GET", item["url"], headers={"If-None-Match": f'"{item["sha256"]}"'}
    )
    assert reply.status == 304 and reply.body == b""


def test_healthz_is_open_with_a_key(keyed_server):
    reply = request(keyed_server.http_base, "GET", "/healthz")
    assert reply.status == 200
    health = reply.json()
    assert health["status"] == "ok"
    assert health["auth_required"] is True
    assert health["backend"] == "codex-exec"
    assert health["model"] == "gpt-image-2"
    assert isinstance(health["generation_timeout_ms"], int)


def test_cors_preflight_and_headers(keyed_server):
    """A UXP plugin's origin is admitted by default and echoed (never `*`);
    a web site's is not, unless listed."""
    plugin = "uxp://com.example.plugin"
    pre = request(
        keyed_server.http_base,
        "OPTIONS",
        "/v1/images/generate",
        headers={
            "Origin": plugin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-api-key",
        },
    )
    assert pre.status == 204
    assert pre.header("Access-Control-Allow-Origin") == plugin and pre.header("Vary") == "Origin"
    assert "POST" in pre.header("Access-Control-Allow-Methods")
    assert "x-api-key" in pre.header("Access-Control-Allow-Headers").lower()
    for path in ("/healthz", "/v1/capabilities", "/nope"):
        reply = request(keyed_server.http_base, "GET", path, headers={"Origin": plugin})
        assert reply.header("Access-Control-Allow-Origin") == plugin, path
        site = request(
            keyed_server.http_base, "GET", path, headers={"Origin": "https://plugin.example"}
        )
        assert site.status == 403 and site.header("Access-Control-Allow-Origin") is None, path


def test_openapi_document_follows_the_annotations(keyed_server):
    reply = request(keyed_server.http_base, "GET", "/v1/openapi.json", headers=PLUGIN_HEADERS)
    assert reply.status == 200
    doc = reply.json()
    assert doc["openapi"].startswith("3.")
    for method in pb.DESCRIPTOR.services_by_name["ImageService"].methods:
        rule = method.GetOptions().Extensions[annotations_pb2.http]
        verb = rule.WhichOneof("pattern")
        operation = doc["paths"][getattr(rule, verb)][verb]
        assert operation["operationId"] == method.name
    assert "head" in doc["paths"]["/v1/images/{image_id}/file"]
    # google.longrunning.Operations on this server's own paths (routes.OPERATION_RULES), as valid
    # OpenAPI paths.
    assert doc["paths"]["/v1/operations/{name}:wait"]["post"]["operationId"] == "WaitOperation"
    assert doc["paths"]["/v1/operations/{name}"]["delete"]["tags"] == ["Operations"]
    caps = doc["components"]["schemas"]["GetCapabilitiesResponse"]["properties"]
    assert set(caps) == set(pb.GetCapabilitiesResponse.DESCRIPTOR.fields_by_name)
    assert request(keyed_server.http_base, "GET", "/v1/openapi.json").status == 401
