"""`codex-image` run as a real subprocess against a live server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.server_proc import REPO

from .conftest import API_KEY

CLI = Path(sys.executable).with_name("codex-image")


def run_cli(server, *args, api_key=API_KEY, timeout=60):
    env = dict(os.environ, CODEX_IMAGE_ADDR=server.grpc_target)
    env.pop("CODEX_IMAGE_API_KEY", None)
    if api_key:
        env["CODEX_IMAGE_API_KEY"] = api_key
    return subprocess.run(
        [str(CLI), *args],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )


def test_generate_saves_files_and_shows_a_bar_per_candidate(server, ref_png, tmp_path):
    out = tmp_path / "out"
    proc = run_cli(
        server,
        "generate",
        "a red fox",
        "-n",
        "4",
        "--size",
        "2K",
        "--aspect",
        "16:9",
        "--ref",
        str(ref_png),
        "-o",
        str(out),
        "--request-id",
        "cli-1",
    )
    assert proc.returncode == 0, proc.stderr
    saved = [Path(line) for line in proc.stdout.splitlines()]
    assert sorted(p.name for p in saved) == [f"cli-1-{i}.png" for i in (1, 2, 3, 4)]
    assert all(p.parent == out and p.read_bytes().startswith(b"\x89PNG") for p in saved)
    for i in (1, 2, 3, 4):
        assert (
            f"candidate {i} [" in proc.stderr and f"candidate {i} [{'#' * 24}] 100%" in proc.stderr
        )


def test_bad_request_exits_nonzero_naming_each_field(server, tmp_path):
    proc = run_cli(server, "generate", "", "-n", "9", "--size", "banana", "-o", str(tmp_path))
    assert proc.returncode == 1
    assert "INVALID_ARGUMENT" in proc.stderr
    for line in (
        "count: 9 is outside 1..4 [INVALID_COUNT]",
        "size: 'banana'",
        "prompt: is required",
    ):
        assert line in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_api_key_is_a_readable_error(server):
    proc = run_cli(server, "capabilities", api_key=None)
    assert proc.returncode == 1
    assert "UNAUTHENTICATED (UNAUTHORIZED)" in proc.stderr and "Traceback" not in proc.stderr


def test_capabilities_and_health_print_json_with_numbers_as_numbers(server):
    caps = run_cli(server, "capabilities")
    assert caps.returncode == 0, caps.stderr
    doc = json.loads(caps.stdout)
    assert doc["max_images"] == 4
    # int64 fields: protobuf's JSON mapping would give the string "600000".
    assert (
        doc["generation_timeout_ms"] == 600000 and doc["size_constraints"]["max_pixels"] == 8294400
    )
    health = run_cli(server, "health")
    assert health.returncode == 0, health.stderr
    body = json.loads(health.stdout)
    assert body["ready"] is True and body["generation_timeout_ms"] == 600000
    assert body["server_version"] == (REPO / "VERSION").read_text().strip()


def test_version():
    proc = subprocess.run([str(CLI), "--version"], capture_output=True, text=True, timeout=30)
    assert proc.stdout.strip() == f"codex-image {(REPO / 'VERSION').read_text().strip()}"


def test_unreachable_server_says_how_to_start_one():
    proc = subprocess.run(
        [str(CLI), "--server", "127.0.0.1:1", "--timeout", "3", "health"],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 1 and "UNAVAILABLE" in proc.stderr and "Traceback" not in proc.stderr
    assert "no codex-image-server answers at 127.0.0.1:1" in proc.stderr
    assert "codex-image-server service install" in proc.stderr


def test_json_writes_one_object_per_event(server, tmp_path):
    out = tmp_path / "out"
    proc = run_cli(
        server,
        "generate",
        "a red fox",
        "-n",
        "2",
        "-o",
        str(out),
        "--request-id",
        "cli-json",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    events = [
        json.loads(line) for line in proc.stdout.splitlines()
    ]  # every line is one JSON object
    assert all(len(e) == 1 for e in events)
    kinds = [next(iter(e)) for e in events]
    assert kinds.count("image") == 2 and kinds.count("summary") == 1 and kinds.count("saved") == 2
    assert (
        kinds.index("summary") < kinds.index("saved")
        and "progress" in kinds[: kinds.index("image")]
    )
    started = [
        e["progress"]
        for e in events
        if "progress" in e and e["progress"]["stage"] == "CANDIDATE_STARTED"
    ]
    assert sorted(p["candidate_index"] for p in started) == [0, 1]
    assert all(isinstance(e["progress"]["elapsed_ms"], int) for e in events if "progress" in e)
    images = {e["image"]["id"]: e["image"] for e in events if "image" in e}
    for saved in (e["saved"] for e in events if "saved" in e):
        data = Path(saved["path"]).read_bytes()
        assert (
            Path(saved["path"]).parent == out
            and len(data) == images[saved["image_id"]]["byte_size"]
        )
    assert proc.stderr == ""  # no progress display mixed in


def test_json_reports_a_refusal_as_an_error_object(server, tmp_path):
    proc = run_cli(server, "generate", "x", "-n", "9", "-o", str(tmp_path), "--json")
    assert proc.returncode == 1
    (event,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert (
        event["error"]["code"] == "INVALID_ARGUMENT" and event["error"]["reason"] == "INVALID_COUNT"
    )
    assert event["error"]["violations"][0]["field"] == "count"
