"""Builds the TypeScript client with tsc and runs its `node --test` suite
against a live server, then checks by pid that the aborted call left no
codex process behind; runs the example program as a newcomer would; and
checks the package is publishable as it is. `make test` runs `npm ci` first
(TEST_DEPS)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from tests.support.server_proc import REPO

from .conftest import API_KEY, assert_runs_gone

TS_DIR = REPO / "clients" / "typescript"
PACKAGE = json.loads((TS_DIR / "package.json").read_text())


def run(cmd, env=None, timeout=300):
    proc = subprocess.run(
        cmd,
        cwd=TS_DIR,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )
    assert proc.returncode == 0, (
        f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    )
    return proc


@pytest.fixture(scope="module")
def node():
    node = shutil.which("node")
    tsc = TS_DIR / "node_modules" / ".bin" / "tsc"
    assert node and tsc.exists(), "run `make ts-deps` (npm ci in clients/typescript) first"
    run([str(tsc), "-p", "tsconfig.json"])
    return node


def test_typescript_client(server, node):
    env = dict(os.environ, CODEX_IMAGE_ADDR=server.grpc_target, CODEX_IMAGE_API_KEY=API_KEY)
    proc = run([node, "--test", "dist/test/"], env=env)
    print(proc.stdout[-6000:])
    assert "# fail 0" in proc.stdout and "CANCELLED request_id=ts-cancel-1" in proc.stdout
    assert_runs_gone(server)


def test_example_makes_its_output_folder_and_labels_every_event(server, node, tmp_path):
    out = tmp_path / "not" / "there" / "yet"
    env = dict(os.environ, CODEX_IMAGE_ADDR=server.grpc_target, CODEX_IMAGE_API_KEY=API_KEY)
    proc = run([node, "dist/examples/generate.js", "a red fox", "2", str(out)], env=env)
    saved = proc.stdout.split()
    assert len(saved) == 2 and all(
        os.path.dirname(p) == str(out) and p.endswith(".png") for p in saved
    )
    lines = proc.stderr.splitlines()
    assert (
        lines and "candidate 1: started" in proc.stderr and "candidate 2: finished" in proc.stderr
    )
    # Every line says something before its timer: no "candidate 1: " with nothing after it.
    assert all(re.fullmatch(r".*\S \(\d+\.\ds\)", line) and ":  (" not in line for line in lines), (
        lines
    )


def test_package_is_publishable_and_states_its_node(node):
    assert "private" not in PACKAGE and PACKAGE["version"] == (REPO / "VERSION").read_text().strip()
    minimum = int(re.fullmatch(r">=(\d+)", PACKAGE["engines"]["node"]).group(1))
    running = int(
        subprocess.check_output([node, "--version"], text=True).strip().lstrip("v").split(".")[0]
    )
    assert running >= minimum, (
        f"this suite runs on Node {running}, below the stated minimum {minimum}"
    )
    packed = json.loads(run(["npm", "pack", "--dry-run", "--json", "--loglevel=error"]).stdout)[0]
    files = {f["path"] for f in packed["files"]}
    assert {
        "package.json",
        "README.md",
        "dist/src/index.js",
        "dist/src/index.d.ts",
        "dist/src/gen/codeximage/v1/image_service_pb.js",
    } <= files
    assert not any(f.startswith(("dist/test", "src/", "test/", "node_modules")) for f in files), (
        files
    )
