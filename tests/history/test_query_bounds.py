"""Bounded queries: every filter has a length limit (INVALID_ARGUMENT naming
the field, on gRPC and /v1), page tokens are signed (a forged or altered one
is INVALID_ARGUMENT / 400, never a 500), a token is tied to its caller's
scope, and a query that runs past its time budget is stopped. Runs on both
index backends (conftest); the budget's own test drives a real SQLite file.
Its servers are served in-process (tests/support/inprocess_server.py)."""

from __future__ import annotations

import base64
import json
import time
import urllib.parse

import grpc
import pytest
from codex_image_server.errors import ServiceError
from codex_image_server.store import Query, SqliteMetadata, StoredImage, paging
from codeximage.v1 import image_service_pb2 as pb

from tests.shim.client import request
from tests.support import server_proc
from tests.support.grpc_helpers import error_details
from tests.support.inprocess_server import serve_in_process

from .conftest import generate
from .test_keys import add_key, md


@pytest.fixture(scope="module")
def served(tmp_path_factory, backend):  # one server per backend
    tmp = tmp_path_factory.mktemp("bounds")
    keys_file = tmp / "keys.json"
    keys = {"alice": add_key(keys_file, "alice"), "bob": add_key(keys_file, "bob")}
    with serve_in_process(tmp, args=["--keys-file", str(keys_file)], http=True) as srv:
        stub = srv.stub()
        for i in range(3):
            for name in keys:
                _, err = generate(
                    stub, f"bounded {name} {i}", request_id=f"{name}-{i}", metadata=md(keys[name])
                )
                assert err is None
        yield srv, stub, keys


def _refused(call, message, metadata) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(message, metadata=metadata, timeout=30)
    return caught.value


def test_a_200000_character_filter_is_invalid_argument_at_once(served):
    _, stub, keys = served
    for call, message in (
        (stub.ListImages, pb.ListImagesRequest),
        (stub.ListRequests, pb.ListRequestsRequest),
    ):
        started = time.monotonic()
        err = _refused(call, message(prompt_contains="ab" * 100_000), md(keys["alice"]))
        elapsed = time.monotonic() - started
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        info, violations = error_details(err)
        assert info.reason == "FILTER_TOO_LONG"
        assert violations == [("prompt_contains", "FILTER_TOO_LONG", "at most 200 characters")]
        assert elapsed < 1.0, f"{call._method}: {elapsed:.2f} s"
    err = _refused(
        stub.ListRequests,
        pb.ListRequestsRequest(key_name="k" * 129, request_id="r" * 65),
        md(keys["alice"]),
    )
    assert {v[0] for v in error_details(err)[1]} == {"key_name", "request_id"}
    # At the limit it is a query like any other.
    assert (
        stub.ListImages(
            pb.ListImagesRequest(prompt_contains="b" * 200), metadata=md(keys["alice"])
        ).images
        == []
    )


def test_over_http_a_long_filter_is_400_naming_the_field(served):
    srv, _, keys = served
    for path in ("/v1/images", "/v1/requests"):
        reply = request(
            srv.http_base,
            "GET",
            f"{path}?prompt_contains={'x' * 201}",
            headers={"Authorization": f"Bearer {keys['alice']}"},
        )
        assert reply.status == 400
        body = reply.json()
        assert body["error"]["code"] == "filter_too_long"
        violations = [
            d
            for d in body["status"]["details"]
            if "fieldViolations" in d or "field_violations" in d
        ]
        assert violations and "prompt_contains" in json.dumps(violations)


def _token_fields(token: str) -> dict:
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    return json.loads(raw[16:])


def test_a_forged_page_token_is_invalid_argument_and_400(served):
    srv, stub, keys = served
    alice = md(keys["alice"])
    first = stub.ListImages(pb.ListImagesRequest(page_size=1), metadata=alice)
    assert first.next_page_token
    fields = _token_fields(first.next_page_token)
    unsigned = (
        base64.urlsafe_b64encode(json.dumps({**fields, "t": 10**30}).encode()).decode().rstrip("=")
    )
    raw = bytearray(
        base64.urlsafe_b64decode(first.next_page_token + "=" * (-len(first.next_page_token) % 4))
    )
    raw[-3] ^= 1  # one bit of the signed part
    altered = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    for forged in (
        unsigned,
        altered,
        "%%%",
        "A" * 600,
        base64.urlsafe_b64encode(b"\xff" * 40).decode(),
    ):
        err = _refused(stub.ListImages, pb.ListImagesRequest(page_size=1, page_token=forged), alice)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (forged, err.details())
        assert error_details(err)[1][0][0] == "page_token"
        reply = request(
            srv.http_base,
            "GET",
            f"/v1/images?page_size=1&page_token={urllib.parse.quote(forged)}",
            headers={"Authorization": f"Bearer {keys['alice']}"},
        )
        assert reply.status == 400, (forged, reply.status)
    # Bob cannot page on with Alice's token: it was made for her scope.
    err = _refused(
        stub.ListImages,
        pb.ListImagesRequest(page_size=1, page_token=first.next_page_token),
        md(keys["bob"]),
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    # Alice can: the token is good.
    again = stub.ListImages(
        pb.ListImagesRequest(page_size=1, page_token=first.next_page_token), metadata=alice
    )
    assert again.images and again.images[0].id != first.images[0].id


def test_times_out_of_range_are_invalid_argument(served):
    _, stub, keys = served
    message = pb.ListImagesRequest()
    message.start_time.seconds = -5
    err = _refused(stub.ListImages, message, md(keys["alice"]))
    assert (
        err.code() == grpc.StatusCode.INVALID_ARGUMENT
        and error_details(err)[1][0][0] == "start_time"
    )


def _image(i: int, prompt: str) -> StoredImage:
    return StoredImage(
        id=f"img_{i:032x}",
        request_id="r",
        index=0,
        label="",
        mime_type="image/png",
        width=1,
        height=1,
        byte_size=1,
        sha256="",
        revised_prompt="",
        thread_id="",
        prompt=prompt,
        requested_size="",
        resolved_size="",
        aspect="",
        quality="",
        output_format="png",
        duration_ms=0,
        created_unix_ms=i,
    )


def _metadata(tmp_path, backend: str, budget_s: float):
    if backend == "sqlite":
        return SqliteMetadata(tmp_path / "index.sqlite3", query_budget_s=budget_s)
    from codex_image_server.store.postgres import PostgresMetadata  # noqa: PLC0415 - psycopg only here

    return PostgresMetadata(
        server_proc.EXTRA_ENV["CODEX_IMAGE_SERVER_DATABASE_URL"],
        replica="bounds-test",
        query_budget_s=budget_s,
    )


def test_a_query_past_its_time_budget_is_stopped(tmp_path, backend):
    """SQLite's progress handler, PostgreSQL's statement_timeout."""
    meta = _metadata(tmp_path, backend, 0.002)
    try:
        meta.add_images([_image(i, f"une ÉCOLE {i}") for i in range(60_000)])
        # The worst case of the prompt filter: the trigram index (Unicode case
        # folding) says every row may match, so the time-ordered scan runs,
        # and LIKE (ASCII case folding) matches none: every prompt is tested.
        query = Query(page_size=10, prompt_contains="école")
        with pytest.raises(ServiceError) as caught:
            paging.page(
                "images",
                query,
                meta.list_images,
                lambda r: paging.Cursor(r.created_unix_ms, r.id),
                meta.page_secret(),
            )
        assert caught.value.reason == "QUERY_TOO_SLOW"
        # The store answers at once afterwards, and a cheap read is never cut short.
        assert meta.get_image(_image(5, "").id).id == _image(5, "").id
    finally:
        meta.close()


def test_a_refused_request_keeps_a_short_prompt_prefix_only(served):
    _, stub, keys = served
    prompt = "a secret plan " * 300  # 4,200 characters
    _, err = generate(
        stub,
        prompt + " [[fake delay=0]]",
        request_id="refused-long",
        metadata=md(keys["alice"]),
        count=99,
    )
    assert err is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT
    record = stub.GetRequest(
        pb.GetRequestRequest(request_id="refused-long"), metadata=md(keys["alice"])
    ).request
    assert record.status == "refused" and record.prompt == prompt[:100]
