"""Keys are tenants: a member key sees, fetches, deletes and lists only its
own images and requests (another key's id is NOT_FOUND / 404, worded as an id
that does not exist), on gRPC and on HTTP; an admin key sees all and can
narrow a list to one key. Runs on both index backends (conftest).
Its servers are served in-process (tests/support/inprocess_server.py)."""

from __future__ import annotations

import json

import grpc
import pytest
from codeximage.v1 import image_service_pb2 as pb

from tests.shim.client import request
from tests.support.inprocess_server import serve_in_process

from .conftest import all_pages, generate
from .test_keys import add_key, md

MISSING_IMAGE = "img_" + "0" * 32


@pytest.fixture(scope="module")
def tenants(tmp_path_factory, backend):  # one server per backend
    tmp = tmp_path_factory.mktemp("tenants")
    keys_file = tmp / "keys.json"
    keys = {
        "alice": add_key(keys_file, "alice"),
        "bob": add_key(keys_file, "bob"),
        "carol": add_key(keys_file, "carol", "--role", "admin"),
    }
    assert [k["role"] for k in json.loads(keys_file.read_text())["keys"]] == [
        "member",
        "member",
        "admin",
    ]
    with serve_in_process(
        tmp,
        args=["--keys-file", str(keys_file)],
        http=True,
        env={"CODEX_IMAGE_SERVER_API_KEY": "env-admin"},
    ) as srv:
        stub = srv.stub()
        made = {}
        for name, request_id in (
            ("alice", "alice-1"),
            ("alice", "shared"),
            ("bob", "bob-1"),
            ("bob", "shared"),
        ):
            images, err = generate(
                stub, f"a picture for {name}", request_id=request_id, metadata=md(keys[name])
            )
            assert err is None, err
            made.setdefault(name, []).extend(images)
        yield srv, stub, keys, made


def _grpc_error(call, *args, **kwargs) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        result = call(*args, **kwargs)
        if hasattr(result, "__next__"):  # a server stream: the error comes as it is read
            list(result)
    return caught.value


def _http(srv, method: str, path: str, key: str):
    return request(srv.http_base, method, path, headers={"Authorization": f"Bearer {key}"})


def test_a_member_lists_only_its_own_work(tenants):
    srv, stub, keys, made = tenants
    mine = {
        i.id for i in all_pages(stub.ListImages, pb.ListImagesRequest(page_size=1), md(keys["bob"]))
    }
    assert mine == {i.id for i in made["bob"]}
    asked_for_alice = stub.ListImages(
        pb.ListImagesRequest(key_name="alice"), metadata=md(keys["bob"])
    )
    assert list(asked_for_alice.images) == []
    requests = stub.ListRequests(pb.ListRequestsRequest(), metadata=md(keys["bob"])).requests
    assert {r.key_name for r in requests} == {"bob"} and len(requests) == 2
    over_http = _http(srv, "GET", "/v1/images", keys["bob"]).json()["images"]
    assert {i["id"] for i in over_http} == mine
    over_http = _http(srv, "GET", "/v1/requests?key_name=alice", keys["bob"]).json()["requests"]
    assert over_http == []


def test_a_member_cannot_fetch_another_keys_image_or_request(tenants):
    srv, stub, keys, made = tenants
    theirs, bob = made["alice"][0].id, md(keys["bob"])
    for rpc, message in (
        (stub.GetImage, pb.GetImageRequest),
        (stub.GetImageFile, pb.GetImageFileRequest),
    ):
        refused = _grpc_error(rpc, message(image_id=theirs), metadata=bob, timeout=30)
        missing = _grpc_error(rpc, message(image_id=MISSING_IMAGE), metadata=bob, timeout=30)
        assert refused.code() == missing.code() == grpc.StatusCode.NOT_FOUND
        # Worded as an id that does not exist: nothing says it is someone's.
        assert refused.details().replace(theirs, MISSING_IMAGE) == missing.details()
    refused = _grpc_error(
        stub.GetRequest, pb.GetRequestRequest(request_id="alice-1"), metadata=bob, timeout=30
    )
    assert refused.code() == grpc.StatusCode.NOT_FOUND
    # The same request id used by both: each sees its own.
    shared = stub.GetRequest(pb.GetRequestRequest(request_id="shared"), metadata=bob, timeout=30)
    assert shared.request.key_name == "bob" and {i.key_name for i in shared.images} == {"bob"}
    for path in (f"/v1/images/{theirs}", f"/v1/images/{theirs}/file", "/v1/requests/alice-1"):
        reply = _http(srv, "GET", path, keys["bob"])
        missing = _http(
            srv,
            "GET",
            path.replace(theirs, MISSING_IMAGE).replace("alice-1", "nobody-1"),
            keys["bob"],
        )
        assert reply.status == missing.status == 404, (path, reply.status)
        assert reply.json()["error"]["code"] == missing.json()["error"]["code"]


def test_a_member_cannot_delete_another_keys_image(tenants):
    srv, stub, keys, made = tenants
    theirs = made["alice"][1].id
    refused = _grpc_error(
        stub.DeleteImage, pb.DeleteImageRequest(image_id=theirs), metadata=md(keys["bob"])
    )
    assert refused.code() == grpc.StatusCode.NOT_FOUND
    assert _http(srv, "DELETE", f"/v1/images/{theirs}", keys["bob"]).status == 404
    # Still there for its owner, bytes and all.
    assert (
        stub.GetImage(pb.GetImageRequest(image_id=theirs), metadata=md(keys["alice"])).image.id
        == theirs
    )
    assert _http(srv, "GET", f"/v1/images/{theirs}/file", keys["alice"]).status == 200


def test_an_admin_sees_all_and_filters_by_key(tenants):
    srv, stub, keys, made = tenants
    for admin in (keys["carol"], "env-admin"):
        everything = {i.id for i in all_pages(stub.ListImages, pb.ListImagesRequest(), md(admin))}
        assert everything >= {i.id for i in made["alice"] + made["bob"]}
        alice_only = stub.ListImages(
            pb.ListImagesRequest(key_name="alice"), metadata=md(admin)
        ).images
        assert {i.key_name for i in alice_only} == {"alice"}
        over_http = _http(srv, "GET", "/v1/requests?key_name=alice", admin).json()["requests"]
        assert {r["key_name"] for r in over_http} == {"alice"} and len(over_http) == 2
        theirs = made["alice"][0].id
        assert (
            stub.GetImage(pb.GetImageRequest(image_id=theirs), metadata=md(admin)).image.key_name
            == "alice"
        )
        assert _http(srv, "GET", f"/v1/images/{theirs}/file", admin).status == 200
    victim = made["bob"][0].id
    stub.DeleteImage(pb.DeleteImageRequest(image_id=victim), metadata=md(keys["carol"]))
    refused = _grpc_error(
        stub.GetImage, pb.GetImageRequest(image_id=victim), metadata=md(keys["bob"])
    )
    assert refused.code() == grpc.StatusCode.NOT_FOUND
