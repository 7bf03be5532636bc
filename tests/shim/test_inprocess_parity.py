"""The shim calls the servicer in-process; a gRPC caller reaches the same
servicer over the network. The same request must give the same answer and
the same error on both paths, and the API key must be checked the same way."""
from __future__ import annotations

import json

import grpc
import pytest
from codeximage.v1 import image_service_pb2 as pb
from google.protobuf import json_format
from google.rpc import error_details_pb2  # noqa: F401 - registers detail types for json_format
from grpc_status import rpc_status

from .client import request
from .conftest import KEY


def _json_bytes(message) -> bytes:
    """What the shim prints for a response message (its jsonmap settings)."""
    return json.dumps(json_format.MessageToDict(message, always_print_fields_with_no_presence=True,
                                                preserving_proto_field_name=True, unquote_int64_if_possible=True),
                      ensure_ascii=False, separators=(",", ":")).encode()


def _status_dict(err: grpc.RpcError) -> dict:
    return json_format.MessageToDict(rpc_status.from_call(err), preserving_proto_field_name=True,
                                     unquote_int64_if_possible=True)


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
    data = b"".join(c.data for c in stub.GetImageFile(pb.GetImageFileRequest(image_id=image.id), timeout=10))
    reply = request(open_server.http_base, "GET", f"/v1/images/{image.id}/file")
    assert reply.status == 200 and reply.body == data and len(data) == image.byte_size


@pytest.mark.parametrize("case", ["unknown-image", "bad-id", "bad-fields"])
def test_the_same_errors(open_server, case):
    stub = open_server.stub()
    if case == "bad-fields":
        fields = {"prompt": "", "count": 9, "size": "77x3", "quality": "ultra", "output_format": "bmp"}
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
    for rpc, path, message in (("GetCapabilities", "/v1/capabilities", pb.GetCapabilitiesRequest()),
                               ("GetImage", "/v1/images/img_" + "1" * 32, pb.GetImageRequest(image_id="img_" + "1" * 32))):
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
    caps = stub.GetCapabilities(pb.GetCapabilitiesRequest(), metadata=[("authorization", f"Bearer {KEY}")])
    assert request(keyed_server.http_base, "GET", "/v1/capabilities",
                   headers={"Authorization": f"Bearer {KEY}"}).body == _json_bytes(caps)
