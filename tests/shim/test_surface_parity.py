"""Every surface is a thin adapter over the same dataplane handlers
(dataplane/handlers.py). Here, over real sockets: the same request gives the
same answer byte for byte on gRPC and /v1, the API key is checked the same
way, and the same bad request gets the same reason and the same field on
gRPC, /v1, the OpenAI surface, MCP and operations' submit (both ports).
The servers are served in-process (tests/support/inprocess_server.py): the
sockets are real, a server process would add nothing."""

from __future__ import annotations

import asyncio
import base64
import json

import grpc
import pytest
from codeximage.v1 import image_service_pb2 as pb
from google.protobuf import json_format
from google.rpc import error_details_pb2  # noqa: F401 - registers detail types for json_format
from grpc_status import rpc_status

from tests.history.test_keys import add_key, md
from tests.mcp import sessions
from tests.support.generating import generate
from tests.support.grpc_helpers import error_details, png
from tests.support.inprocess_server import serve_in_process

from .client import request
from .conftest import KEY

IN_PROCESS = True  # its servers: see conftest.py


def _json_bytes(message) -> bytes:
    """What the shim prints for a response message (its jsonmap settings)."""
    return json.dumps(
        json_format.MessageToDict(
            message,
            always_print_fields_with_no_presence=True,
            preserving_proto_field_name=True,
            unquote_int64_if_possible=True,
        ),
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()


def _status_dict(err: grpc.RpcError) -> dict:
    return json_format.MessageToDict(
        rpc_status.from_call(err), preserving_proto_field_name=True, unquote_int64_if_possible=True
    )


def _generated_image(stub) -> pb.Image:
    for event in stub.Generate(pb.GenerateRequest(prompt="parity"), timeout=60):
        if event.WhichOneof("event") == "image":
            return event.image
    raise AssertionError("no image")


def test_the_same_answers_byte_for_byte(open_server):
    stub = open_server.stub()
    caps = stub.GetCapabilities(pb.GetCapabilitiesRequest(), timeout=10)
    reply = request(open_server.http_base, "GET", "/v1/capabilities")
    assert reply.status == 200 and reply.body == _json_bytes(caps)
    # Served twice (the answer is encoded once): still the same bytes.
    assert request(open_server.http_base, "GET", "/v1/capabilities").body == reply.body

    image = _generated_image(stub)
    got = stub.GetImage(pb.GetImageRequest(image_id=image.id), timeout=10)
    reply = request(open_server.http_base, "GET", f"/v1/images/{image.id}")
    assert reply.status == 200 and reply.body == _json_bytes(got)
    data = b"".join(
        c.data for c in stub.GetImageFile(pb.GetImageFileRequest(image_id=image.id), timeout=10)
    )
    reply = request(open_server.http_base, "GET", f"/v1/images/{image.id}/file")
    assert reply.status == 200 and reply.body == data and len(data) == image.byte_size


@pytest.mark.parametrize("case", ["unknown-image", "bad-id", "bad-fields"])
def test_the_same_errors(open_server, case):
    stub = open_server.stub()
    if case == "bad-fields":
        fields = {
            "prompt": "",
            "count": 9,
            "size": "77x3",
            "quality": "ultra",
            "output_format": "bmp",
        }
        with pytest.raises(grpc.RpcError) as exc:
            list(stub.Generate(pb.GenerateRequest(**fields), timeout=10))
        reply = request(open_server.http_base, "POST", "/v1/images/generate", fields)
        expected_http = 400
    else:
        image_id = "img_" + "0" * 32 if case == "unknown-image" else "not-an-id"
        with pytest.raises(grpc.RpcError) as exc:
            stub.GetImage(pb.GetImageRequest(image_id=image_id), timeout=10)
        reply = request(open_server.http_base, "GET", f"/v1/images/{image_id}")
        expected_http = 404
    assert reply.status == expected_http
    # The google.rpc.Status the shim prints is the one a gRPC caller receives:
    # code, message and every detail (ErrorInfo, BadRequest with each field).
    assert reply.json()["status"] == _status_dict(exc.value)


@pytest.mark.parametrize("key", [None, "wrong", KEY])
def test_auth_is_the_same_on_both_paths(keyed_server, key):
    stub = keyed_server.stub()
    grpc_md = [("x-api-key", key)] if key else None
    http_headers = {"X-API-Key": key} if key else {}
    for rpc, path, message in (
        ("GetCapabilities", "/v1/capabilities", pb.GetCapabilitiesRequest()),
        ("GetImage", "/v1/images/img_" + "1" * 32, pb.GetImageRequest(image_id="img_" + "1" * 32)),
    ):
        reply = request(keyed_server.http_base, "GET", path, headers=http_headers)
        try:
            answer = getattr(stub, rpc)(message, metadata=grpc_md, timeout=10)
        except grpc.RpcError as err:
            # Refused (or not found) the same way: same status on both paths.
            assert reply.json()["status"] == _status_dict(err), rpc
            if key != KEY:
                assert err.code() == grpc.StatusCode.UNAUTHENTICATED and reply.status == 401
            continue
        assert key == KEY and reply.status == 200 and reply.body == _json_bytes(answer)
    # Bearer works on both paths, too.
    caps = stub.GetCapabilities(
        pb.GetCapabilitiesRequest(), metadata=[("authorization", f"Bearer {KEY}")]
    )
    assert request(
        keyed_server.http_base,
        "GET",
        "/v1/capabilities",
        headers={"Authorization": f"Bearer {KEY}"},
    ).body == _json_bytes(caps)


# -- the same bad request on every surface --------------------------------------------


def _data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def surfaces(tmp_path_factory):
    """Two member keys (tenants), at most two references a request."""
    tmp = tmp_path_factory.mktemp("surfaces")
    keys_file = tmp / "keys.json"
    keys = {"alice": add_key(keys_file, "alice"), "bob": add_key(keys_file, "bob")}
    with serve_in_process(
        tmp, http=True, args=["--keys-file", str(keys_file), "--max-references", "2"]
    ) as srv:
        images, err = generate(srv.stub(), "bob's picture", metadata=md(keys["bob"]))
        assert err is None, err
        yield srv, keys, images[0]


def _grpc_outcome(call) -> tuple[str, tuple[str, ...]]:
    with pytest.raises(grpc.RpcError) as caught:
        result = call()
        if hasattr(result, "__next__"):  # a stream: the error comes as it is read
            list(result)
    info, violations = error_details(caught.value)
    return info.reason, tuple(v[0] for v in violations)


def _status_outcome(status: dict) -> tuple[str, tuple[str, ...]]:
    reason, fields = "", ()
    for detail in status.get("details", ()):
        if detail["@type"].endswith("google.rpc.ErrorInfo"):
            reason = detail["reason"]
        elif detail["@type"].endswith("google.rpc.BadRequest"):
            fields = tuple(v["field"] for v in detail["field_violations"])
    return reason, fields


def _http_outcome(reply) -> tuple[str, tuple[str, ...]]:
    assert 400 <= reply.status < 500, (reply.status, reply.body[:300])
    body = reply.json()
    outcome = _status_outcome(body["status"])
    assert body["error"]["code"] == outcome[0].lower()  # the plugin contract's code is the reason
    return outcome


def _openai_outcome(reply) -> tuple[str, str | None]:
    assert 400 <= reply.status < 500, (reply.status, reply.body[:300])
    error = reply.json()["error"]
    return error["code"].upper(), error["param"]


def _mcp_call(srv, key: str | None, tool: str, args: dict) -> dict:
    async def scenario():
        async with sessions.http(srv.http_base, key=key) as client:
            return await client.call_tool(tool, args)

    result = asyncio.run(scenario())
    assert result.is_error, result.content[0].text
    return result.structured_content["error"]


def _mcp_outcome(srv, key: str, tool: str, args: dict) -> tuple[str, tuple[str, ...]]:
    error = _mcp_call(srv, key, tool, args)
    return error["reason"], tuple(v["field"] for v in error["violations"])


# Bad Generate requests, in the proto's field names: (fields, references, the field named).
BAD_REQUESTS = {
    "bad-size": ({"prompt": "parity", "size": "77x3"}, 0, "size"),
    "unknown-preset": ({"prompt": "parity", "size": "9K"}, 0, "size"),
    "too-many-references": ({"prompt": "parity"}, 3, "references"),
    "bad-request-id": ({"prompt": "parity", "request_id": "not a valid id!"}, 0, "request_id"),
}
# What OpenAI calls our fields (its `error.param`).
OPENAI_PARAMS = {"size": "size", "references": "image"}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_a_bad_request_is_refused_alike_on_every_surface(surfaces, case):
    srv, keys, _ = surfaces
    fields, n_refs, named = BAD_REQUESTS[case]
    ref = png(16, 16)
    message = pb.GenerateRequest(
        **fields, references=[pb.Reference(image=ref, mime_type="image/png")] * n_refs
    )
    alice = md(keys["alice"])
    http_key = {"Authorization": f"Bearer {keys['alice']}"}
    stub = srv.stub()
    expected = _grpc_outcome(lambda: stub.Generate(message, metadata=alice, timeout=30))
    reason, named_fields = expected
    assert reason and any(f == named or f.startswith(named + "[") for f in named_fields), expected

    outcomes = {
        "grpc submit": _grpc_outcome(
            lambda: stub.SubmitGeneration(message, metadata=alice, timeout=30)
        )
    }
    v1_body = dict(fields, references=[{"image": _data_url(ref)}] * n_refs)
    outcomes["/v1 generate"] = _http_outcome(
        request(srv.http_base, "POST", "/v1/images/generate", v1_body, headers=http_key)
    )
    submit_body = dict(
        fields,
        references=[{"image": base64.b64encode(ref).decode(), "mime_type": "image/png"}] * n_refs,
    )
    outcomes["/v1 submit"] = _http_outcome(
        request(srv.http_base, "POST", "/v1/images:submit", submit_body, headers=http_key)
    )
    if (
        named != "request_id"
    ):  # neither OpenAI's fields nor the MCP tools' schema let this id through
        mcp_args = {k: v for k, v in fields.items()}
        if n_refs:
            mcp_args["references"] = [_data_url(ref)] * n_refs
        outcomes["mcp"] = _mcp_outcome(srv, keys["alice"], "generate_image", mcp_args)
        if n_refs:
            reply = request(
                srv.http_base,
                "POST",
                "/v1/images/edits",
                dict(fields, images=[{"image_url": _data_url(ref)}] * n_refs),
                headers=http_key,
            )
        else:
            reply = request(
                srv.http_base, "POST", "/v1/images/generations", fields, headers=http_key
            )
        assert _openai_outcome(reply) == (reason, OPENAI_PARAMS[named]), case
    for surface, outcome in outcomes.items():
        assert outcome == expected, (case, surface)


@pytest.mark.parametrize("case", ["unknown-image", "another-tenants-image"])
def test_an_image_out_of_reach_is_not_found_alike(surfaces, case):
    srv, keys, bobs = surfaces
    image_id = "img_" + "0" * 32 if case == "unknown-image" else bobs.id
    stub = srv.stub()
    expected = _grpc_outcome(
        lambda: stub.GetImage(
            pb.GetImageRequest(image_id=image_id), metadata=md(keys["alice"]), timeout=10
        )
    )
    assert expected[0] == "IMAGE_NOT_FOUND" or expected[0].endswith("NOT_FOUND"), expected
    reply = request(
        srv.http_base, "GET", f"/v1/images/{image_id}", headers={"X-API-Key": keys["alice"]}
    )
    assert reply.status == 404 and _http_outcome(reply) == expected
    file_reply = request(
        srv.http_base, "GET", f"/v1/images/{image_id}/file", headers={"X-API-Key": keys["alice"]}
    )
    assert file_reply.status == 404 and _http_outcome(file_reply) == expected
    assert _mcp_outcome(srv, keys["alice"], "get_image", {"image_id": image_id}) == expected
    # Its owner reaches it: the refusal is about who asks, not what exists.
    if case == "another-tenants-image":
        assert stub.GetImage(
            pb.GetImageRequest(image_id=image_id), metadata=md(keys["bob"]), timeout=10
        ).image.id


@pytest.mark.parametrize("key", [None, "not-a-key"], ids=["missing", "wrong"])
def test_a_missing_key_is_refused_alike(surfaces, key):
    srv, _, _ = surfaces
    grpc_md = md(key) if key else None
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    stub = srv.stub()
    expected = _grpc_outcome(
        lambda: stub.GetCapabilities(pb.GetCapabilitiesRequest(), metadata=grpc_md, timeout=10)
    )
    assert expected == ("UNAUTHORIZED", ())
    assert (
        _grpc_outcome(
            lambda: stub.SubmitGeneration(
                pb.GenerateRequest(prompt="p"), metadata=grpc_md, timeout=10
            )
        )
        == expected
    )
    for method, path, body in (
        ("GET", "/v1/capabilities", None),
        ("GET", "/v1/images", None),
        ("POST", "/v1/images/generate", {"prompt": "p"}),
        ("POST", "/v1/images:submit", {"prompt": "p"}),
    ):
        reply = request(srv.http_base, method, path, body, headers=headers)
        assert reply.status == 401 and _http_outcome(reply) == expected, path
    for method, path, body in (
        ("GET", "/v1/models", None),
        ("POST", "/v1/images/generations", {"prompt": "p"}),
    ):
        reply = request(srv.http_base, method, path, body, headers=headers)
        assert reply.status == 401 and _openai_outcome(reply) == ("UNAUTHORIZED", None), path
    reply = request(
        srv.http_base,
        "POST",
        "/mcp",
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        headers={**headers, "Accept": "application/json, text/event-stream"},
    )
    assert reply.status == 401 and _http_outcome(reply) == expected
