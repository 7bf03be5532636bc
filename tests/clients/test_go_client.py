"""Runs the Go client's `go test` against a live server, then checks by pid
that the call it cancelled left no codex process behind."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.server_proc import REPO

from .conftest import API_KEY, assert_runs_gone

GO_DIR = REPO / "clients" / "go"


def test_go_client(server):
    go = shutil.which("go")
    assert go, "the Go toolchain is needed for the Go client tests"
    env = dict(
        os.environ,
        CODEX_IMAGE_ADDR=server.grpc_target,
        CODEX_IMAGE_API_KEY=API_KEY,
        GOFLAGS="-mod=readonly",
    )
    # -count=1: never a cached pass; the server is new every run.
    proc = subprocess.run(
        [go, "test", "-count=1", "-v", "./..."],
        cwd=GO_DIR,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=600,
    )
    print(proc.stdout[-6000:], proc.stderr[-3000:])
    assert proc.returncode == 0, f"go test failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    assert "--- PASS: TestContextCancel" in proc.stdout
    assert "--- PASS: TestDetachedSubmitWaitCancel" in proc.stdout
    assert_runs_gone(server)


def test_go_mod_states_the_real_minimum_go():
    """go.mod's `go` line is the minimum Go the module supports; it must be
    exactly what its dependencies need (higher would turn users away for
    nothing, lower does not build), and this suite's Go must meet it."""
    go = shutil.which("go")
    assert go, "the Go toolchain is needed for the Go client tests"
    stated = re.search(r"^go (\S+)$", (GO_DIR / "go.mod").read_text(), re.M).group(1)
    # A copy of go.mod/go.sum: listing the whole graph may add go.sum lines.
    scratch = Path(tempfile.mkdtemp())
    for name in ("go.mod", "go.sum"):
        shutil.copy(GO_DIR / name, scratch / name)
    env = dict(os.environ, GOFLAGS="-mod=mod")
    listed = subprocess.run(
        [
            go,
            "list",
            f"-modfile={scratch / 'go.mod'}",
            "-m",
            "-f",
            "{{if not .Main}}{{.GoVersion}}{{end}}",
            "all",
        ],
        cwd=GO_DIR,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    shutil.rmtree(scratch)
    assert listed.returncode == 0, listed.stderr

    def key(v):
        return tuple(int(x) for x in v.split("."))

    needed = max((v for v in listed.stdout.split() if v), key=key)
    assert stated == needed, f"go.mod says go {stated}; its dependencies need go {needed}"
    running = (
        subprocess.check_output([go, "env", "GOVERSION"], text=True).strip().removeprefix("go")
    )
    assert key(running) >= key(stated)
    assert (
        f"Go {'.'.join(stated.split('.')[:2])} or later"
        in (REPO / "docs" / "clients.md").read_text()
    )
