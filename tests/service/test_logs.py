"""Logs are JSON lines with ids, counts and outcomes, and never carry keys,
prompts or image bytes."""

from __future__ import annotations

import base64
import io
import json

import grpc
import pytest
from codex_image_server.runtime import logs
from codeximage.v1 import image_service_pb2 as pb

from tests.support.grpc_helpers import png
from tests.support.server_proc import start_server

KEY = "sk-test-do-not-log-7f3a9c"
PROMPT = "a secret-prompt-zebra-quartz over the harbour"


def test_logs_are_structured_and_leak_nothing(tmp_path):
    ref = png(48, 48, color=(1, 2, 3))
    with start_server(tmp_path, env={"CODEX_IMAGE_SERVER_API_KEY": KEY}) as srv:
        stub = srv.stub()
        md = [("authorization", f"Bearer {KEY}")]
        list(
            stub.Generate(
                pb.GenerateRequest(
                    prompt=PROMPT, request_id="log-check", references=[pb.Reference(image=ref)]
                ),
                metadata=md,
                timeout=30,
            )
        )
        with pytest.raises(grpc.RpcError):
            list(
                stub.Generate(
                    pb.GenerateRequest(
                        prompt=PROMPT + " [[fake mode=fail]]", request_id="log-fail"
                    ),
                    metadata=md,
                    timeout=30,
                )
            )
        with pytest.raises(grpc.RpcError):
            stub.GetCapabilities(pb.GetCapabilitiesRequest(), metadata=[("x-api-key", KEY + "x")])
    text = srv.log_text()
    for secret in (KEY, "secret-prompt-zebra-quartz", base64.b64encode(ref).decode()[:40]):
        assert secret not in text
    records = [json.loads(line) for line in text.splitlines()]  # every line is JSON
    ends = {r["request_id"]: r for r in records if r["event"] == "generate.end"}
    assert ends["log-check"]["outcome"] == "completed" and ends["log-check"]["images"] == 1
    assert ends["log-check"]["references"] == 1 and ends["log-check"]["prompt_chars"] == len(PROMPT)
    assert ends["log-fail"]["outcome"] == "codex_exec_failed"
    assert all("duration_ms" in r for r in ends.values())


def test_lines_go_where_they_are_sent_and_back_to_stderr(capsys):
    """`write_to` (for a server inside another program): every kind of line
    goes to the stream given, then to stderr again."""
    # Whatever this worker's in-process servers left current (a session-scoped
    # one lives on after its tests) is put aside for this test, then restored.
    outer = logs.write_to(None)
    try:
        stream = io.StringIO()
        before = logs.write_to(stream)
        assert before is None
        try:
            logs.log("write.to.check", count=1)
            logs.access("rid-1", "GET", "/x", 200, 3, 0, None)  # not on a loop: at once
        finally:
            assert logs.write_to(before) is stream
        logs.log("write.to.back", count=2)
    finally:
        logs.write_to(outer)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [r["event"] for r in lines] == ["write.to.check", "http.access"]
    assert lines[1]["request_id"] == "rid-1"
    assert json.loads(capsys.readouterr().err.splitlines()[-1])["event"] == "write.to.back"
