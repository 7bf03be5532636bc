"""The official openai npm SDK (tests/openai_sdk/js, pinned, installed by
`make openai-js-deps`) runs its `node --test` suite against a server process;
then the codex runs of its timed-out call are looked up by pid. The Python
SDK's timed-out call is here too: a call given up on is cancellation, which
is tested against a server process (test_images.py is served in-process)."""

from __future__ import annotations

import os
import shutil
import subprocess

import openai
import pytest

from tests.support import procs
from tests.support.server_proc import REPO

from .conftest import KEY

JS_DIR = REPO / "tests" / "openai_sdk" / "js"


def test_openai_npm_sdk(server):
    node = shutil.which("node")
    assert node and (JS_DIR / "node_modules" / "openai").is_dir(), (
        "run `make openai-js-deps` (npm ci in tests/openai_sdk/js) first"
    )
    env = dict(os.environ, OPENAI_BASE_URL=server.http_base + "/v1", OPENAI_API_KEY=KEY)
    proc = subprocess.run(
        [node, "--test", "images.test.mjs"],
        cwd=JS_DIR,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    assert proc.returncode == 0 and "# fail 0" in proc.stdout, (
        proc.stdout[-6000:] + proc.stderr[-3000:]
    )
    assert "TIMED_OUT js-timeout" in proc.stdout
    runs = [r for r in server.fake_runs() if r.get("child_pid")]
    assert len(runs) >= 2, "the timed-out call's codex runs had started"
    pids = [p for r in runs for p in (r["pid"], r["child_pid"])]
    assert procs.wait_until(lambda: not any(procs.running(p) for p in pids), timeout=15), pids


def test_timed_out_sdk_call_leaves_no_codex(client, server):
    earlier = {r["pid"] for r in server.fake_runs()}
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=1.5).images.generate(
            prompt="slow [[fake delay=60 child=1]]", n=2, user="timeout-test"
        )
    # The runs with a grandchild that started since: this call's.
    runs = [r for r in server.fake_runs() if r.get("child_pid") and r["pid"] not in earlier]
    assert len(runs) == 2, "both codex runs had started"
    pids = [p for r in runs for p in (r["pid"], r["child_pid"])]
    assert procs.wait_until(lambda: not any(procs.running(p) for p in pids), timeout=15), pids
