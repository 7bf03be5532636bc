"""Named keys from a keys file: names on every request, daily and concurrent
limits refused with RetryInfo, reload on SIGHUP, the old API key as "default"."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time

import grpc
import pytest
from codeximage.v1 import image_service_pb2 as pb
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests.shim.client import request
from tests.support.grpc_helpers import error_details
from tests.support.server_proc import REPO, start_server

from .conftest import generate


def add_key(keys_file, name: str, *extra: str) -> str:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "codex_image_server",
            "keys",
            "add",
            name,
            "--keys-file",
            str(keys_file),
            *extra,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def retry_delay_s(err: grpc.RpcError) -> int | None:
    for detail in rpc_status.from_call(err).details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.seconds
    return None


def md(key: str):
    return [("authorization", f"Bearer {key}")]


def test_keys_add_prints_the_key_once_and_stores_only_its_hash(tmp_path):
    keys_file = tmp_path / "keys.json"
    key = add_key(keys_file, "ci", "--images-per-day", "5", "--max-concurrent", "2")
    assert key and key not in keys_file.read_text()
    (entry,) = json.loads(keys_file.read_text())["keys"]
    assert entry == {
        "name": "ci",
        "sha256": hashlib.sha256(key.encode()).hexdigest(),
        "max_concurrent": 2,
        "images_per_day": 5,
        "role": "member",
    }
    assert keys_file.stat().st_mode & 0o077 == 0
    with pytest.raises(subprocess.CalledProcessError):
        add_key(keys_file, "ci")  # names are unique


def test_a_key_over_its_daily_limit_is_refused_with_retry_info(tmp_path):
    keys_file = tmp_path / "keys.json"
    key = add_key(keys_file, "ci", "--images-per-day", "3")
    dirs = dict(state_dir=tmp_path / "state", output_dir=tmp_path / "out")
    with start_server(tmp_path, args=["--keys-file", str(keys_file)], http=True, **dirs) as srv:
        stub = srv.stub()
        images, err = generate(stub, "first two", count=2, request_id="daily-1", metadata=md(key))
        assert err is None and all(i.key_name == "ci" for i in images)
        _, err = generate(stub, "two more", count=2, request_id="daily-2", metadata=md(key))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        info, _ = error_details(err)
        assert info.reason == "KEY_DAILY_LIMIT" and info.metadata["key_name"] == "ci"
        assert 0 < retry_delay_s(err) <= 86401
        over_http = request(
            srv.http_base,
            "POST",
            "/v1/images/generate",
            {"prompt": "via http", "n": 2},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert over_http.status == 429 and over_http.json()["error"]["code"] == "key_daily_limit"
        assert 0 < int(over_http.header("Retry-After")) <= 86401
        _, err = generate(stub, "one fits", count=1, request_id="daily-3", metadata=md(key))
        assert err is None
        detail = stub.GetRequest(pb.GetRequestRequest(request_id="daily-2"), metadata=md(key))
        assert (
            detail.request.status == "refused" and detail.request.error_reason == "KEY_DAILY_LIMIT"
        )
        assert detail.request.key_name == "ci"
        assert (
            detail.key_usage.key_name,
            detail.key_usage.images_today,
            detail.key_usage.images_per_day,
        ) == ("ci", 3, 3)
        starts = [r for r in srv.log_records() if r["event"] == "generate.start"]
        assert {r["key_name"] for r in starts} == {"ci"}
    with start_server(tmp_path, args=["--keys-file", str(keys_file)], **dirs) as srv:
        _, err = generate(srv.stub(), "after a restart", request_id="daily-4", metadata=md(key))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # usage is counted from the history


def test_a_key_over_its_concurrency_limit_is_refused(tmp_path):
    keys_file = tmp_path / "keys.json"
    key = add_key(keys_file, "solo", "--max-concurrent", "1")
    other = add_key(keys_file, "other")
    with start_server(
        tmp_path, args=["--keys-file", str(keys_file), "--kill-grace-ms", "300"]
    ) as srv:
        stub = srv.stub()
        slow = stub.Generate(
            pb.GenerateRequest(prompt="x [[fake delay=60]]", request_id="solo-slow"),
            metadata=md(key),
            timeout=60,
        )
        deadline = time.monotonic() + 20
        while not srv.runs_of("solo-slow"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        _, err = generate(stub, "second", request_id="solo-second", metadata=md(key))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error_details(err)[0].reason == "KEY_CONCURRENCY_LIMIT" and retry_delay_s(err) > 0
        _, err = generate(
            stub, "another key is not held back", request_id="other-key", metadata=md(other)
        )
        assert err is None
        slow.cancel()
        deadline = time.monotonic() + 20
        while True:  # the slot of the key comes back once the slow request has ended
            _, err = generate(stub, "third", request_id="solo-third", metadata=md(key))
            if err is None:
                break
            assert time.monotonic() < deadline, "the key's slot never came back"
            time.sleep(0.1)


def test_keys_file_is_reloaded_on_sighup_and_the_env_key_is_default(tmp_path):
    keys_file = tmp_path / "keys.json"
    first = add_key(keys_file, "first")
    with start_server(
        tmp_path,
        args=["--keys-file", str(keys_file)],
        env={"CODEX_IMAGE_SERVER_API_KEY": "env-key"},
    ) as srv:
        stub = srv.stub()
        (img,), err = generate(stub, "env key", request_id="by-env", metadata=md("env-key"))
        assert err is None and img.key_name == "default"
        second = add_key(keys_file, "second")
        with pytest.raises(grpc.RpcError) as exc:
            stub.ListImages(pb.ListImagesRequest(), metadata=md(second))
        assert exc.value.code() == grpc.StatusCode.UNAUTHENTICATED
        srv.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while True:
            try:
                stub.ListImages(pb.ListImagesRequest(), metadata=md(second))
                break
            except grpc.RpcError as err:
                assert err.code() == grpc.StatusCode.UNAUTHENTICATED
                assert time.monotonic() < deadline, "SIGHUP did not load the new key"
                time.sleep(0.05)
        (img,), err = generate(stub, "second key", request_id="by-second", metadata=md(second))
        assert err is None and img.key_name == "second"
        # The env key is an admin: it sees every key's work.
        listed = stub.ListImages(
            pb.ListImagesRequest(key_name="second"), metadata=md("env-key")
        ).images
        assert [i.request_id for i in listed] == ["by-second"]
        listed = stub.ListRequests(
            pb.ListRequestsRequest(key_name="default"), metadata=md("env-key")
        ).requests
        assert [r.request_id for r in listed] == ["by-env"]
        with pytest.raises(grpc.RpcError) as exc:
            stub.ListImages(pb.ListImagesRequest(), metadata=md(first + "x"))
        assert exc.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert any(r["event"] == "keys.reloaded" for r in srv.log_records())
