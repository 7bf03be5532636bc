"""`codex-image` run as a real subprocess against a live server."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import API_KEY

CLI = Path(sys.executable).with_name("codex-image")


def run_cli(server, *args, api_key=API_KEY, timeout=60):
    env = dict(os.environ, CODEX_IMAGE_ADDR=server.grpc_target)
    env.pop("CODEX_IMAGE_API_KEY", None)
    if api_key:
        env["CODEX_IMAGE_API_KEY"] = api_key
    return subprocess.run([str(CLI), *args], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=timeout)


def test_generate_saves_files_and_shows_a_bar_per_candidate(server, ref_png, tmp_path):
    out = tmp_path / "out"
    proc = run_cli(server, "generate", "a red fox", "-n", "4", "--size", "2K", "--aspect", "16:9",
                   "--ref", str(ref_png), "-o", str(out), "--request-id", "cli-1")
    assert proc.returncode == 0, proc.stderr
    saved = [Path(line) for line in proc.stdout.splitlines()]
    assert sorted(p.name for p in saved) == [f"cli-1-{i}.png" for i in (1, 2, 3, 4)]
    assert all(p.parent == out and p.read_bytes().startswith(b"\x89PNG") for p in saved)
    for i in (1, 2, 3, 4):
        assert f"candidate {i} [" in proc.stderr and f"candidate {i} [{'#' * 24}] 100%" in proc.stderr


def test_bad_request_exits_nonzero_naming_each_field(server, tmp_path):
    proc = run_cli(server, "generate", "", "-n", "9", "--size", "banana", "-o", str(tmp_path))
    assert proc.returncode == 1
    assert "INVALID_ARGUMENT" in proc.stderr
    for line in ("count: 9 is outside 1..4 [INVALID_COUNT]", "size: 'banana'", "prompt: is required"):
        assert line in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_api_key_is_a_readable_error(server):
    proc = run_cli(server, "capabilities", api_key=None)
    assert proc.returncode == 1
    assert "UNAUTHENTICATED (UNAUTHORIZED)" in proc.stderr and "Traceback" not in proc.stderr


def test_capabilities_and_health_print_json(server):
    caps = run_cli(server, "capabilities")
    assert caps.returncode == 0, caps.stderr
    assert json.loads(caps.stdout)["max_images"] == 4
    health = run_cli(server, "health")
    assert health.returncode == 0, health.stderr
    assert json.loads(health.stdout)["ready"] is True


def test_unreachable_server_fails_cleanly():
    proc = subprocess.run([str(CLI), "--server", "127.0.0.1:1", "--timeout", "3", "health"],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1 and "UNAVAILABLE" in proc.stderr and "Traceback" not in proc.stderr
