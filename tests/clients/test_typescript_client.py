"""Builds the TypeScript client with tsc and runs its `node --test` suite
against a live server, then checks by pid that the aborted call left no
codex process behind. `make test` runs `npm ci` first (TEST_DEPS)."""
from __future__ import annotations

import os
import shutil
import subprocess

from tests.support.server_proc import REPO

from .conftest import API_KEY, assert_runs_gone

TS_DIR = REPO / "clients" / "typescript"


def run(cmd, env=None, timeout=300):
    proc = subprocess.run(cmd, cwd=TS_DIR, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_typescript_client(server):
    node = shutil.which("node")
    tsc = TS_DIR / "node_modules" / ".bin" / "tsc"
    assert node and tsc.exists(), "run `make ts-deps` (npm ci in clients/typescript) first"
    run([str(tsc), "-p", "tsconfig.json"])
    env = dict(os.environ, CODEX_IMAGE_ADDR=server.grpc_target, CODEX_IMAGE_API_KEY=API_KEY)
    proc = run([node, "--test", "dist/test/"], env=env)
    print(proc.stdout[-6000:])
    assert "# fail 0" in proc.stdout and "CANCELLED request_id=ts-cancel-1" in proc.stdout
    assert_runs_gone(server)
