"""Runs the Go client's `go test` against a live server, then checks by pid
that the call it cancelled left no codex process behind."""
from __future__ import annotations

import os
import shutil
import subprocess

from tests.support.server_proc import REPO

from .conftest import API_KEY, assert_runs_gone

GO_DIR = REPO / "clients" / "go"


def test_go_client(server):
    go = shutil.which("go")
    assert go, "the Go toolchain is needed for the Go client tests"
    env = dict(os.environ, CODEX_IMAGE_ADDR=server.grpc_target, CODEX_IMAGE_API_KEY=API_KEY,
               GOFLAGS="-mod=readonly")
    # -count=1: never a cached pass; the server is new every run.
    proc = subprocess.run([go, "test", "-count=1", "-v", "./..."], cwd=GO_DIR, env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
    print(proc.stdout[-6000:], proc.stderr[-3000:])
    assert proc.returncode == 0, f"go test failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    assert "--- PASS: TestContextCancel" in proc.stdout
    assert_runs_gone(server)
