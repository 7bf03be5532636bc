"""Re-captures the real-codex fixtures of fixtures/ from runs against the stand-in.

    .venv/bin/python -m tests.rollout_shapes.capture [VERSION ...]

For each version installed by `make codex-matrix` (.tools/codex-<version>/):
one `codex exec` run (its rollout: fixtures/extension-<version>.jsonl) and,
for the newest, one `codex app-server` turn (its JSON-RPC notifications:
fixtures/app-server-v2-<version>.jsonl). The CODEX_HOME path becomes
{{CODEX_HOME}}, the image's base64 {{RESULT}} (the tests put a PNG of their
own there), and any other string over 400 characters is cut short: the files
stay small and the shapes exact.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.e2e import realcodex
from tests.upstream_standin import UpstreamStandin, write_codex_home

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
_LONG = 400


def native(version: str) -> Path:
    return realcodex.native_codex(
        realcodex.REPO / ".tools" / f"codex-{version}" / "node_modules" / ".bin" / "codex"
    )


def _scrub(value, home: str, results: set[str]):
    if isinstance(value, dict):
        return {k: _scrub(v, home, results) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, home, results) for v in value]
    if isinstance(value, str):
        for result in results:
            value = value.replace(result, "{{RESULT}}")
        value = value.replace(home, "{{CODEX_HOME}}")
        if len(value) > _LONG:
            value = value[:80] + f"...[{len(value)} characters cut by capture.py]"
    return value


def _results(lines: list[dict]) -> set[str]:
    """Every image's base64 in these records (the stand-in's PNGs)."""
    found = set()
    stack = list(lines)
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            stack.extend(cur.values())
        elif isinstance(cur, list):
            stack.extend(cur)
        elif isinstance(cur, str) and cur.startswith("iVBORw0KGgo"):
            found.add(cur)
    return found


def _write(name: str, records: list[dict], home: str) -> Path:
    results = _results(records)
    path = FIXTURES / name
    path.write_text(
        "".join(json.dumps(_scrub(r, home, results), separators=(",", ":")) + "\n" for r in records)
    )
    return path


def exec_rollout(version: str, standin: UpstreamStandin) -> Path:
    home = os.path.realpath(tempfile.mkdtemp(prefix=f"capture-{version}-"))
    env = dict(os.environ, **write_codex_home(home, standin.base_url))
    subprocess.run(
        [str(native(version)), "exec", "--json", "--skip-git-repo-check", "--", "a red fox"],
        env=env,
        cwd=home,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
        check=True,
    )
    (rollout,) = Path(home).glob("sessions/*/*/*/rollout-*.jsonl")
    records = [json.loads(line) for line in rollout.read_text().splitlines()]
    return _write(f"extension-{version}.jsonl", records, home)


def app_server_turn(version: str, standin: UpstreamStandin) -> Path:
    home = os.path.realpath(tempfile.mkdtemp(prefix=f"capture-as-{version}-"))
    env = dict(os.environ, **write_codex_home(home, standin.base_url))
    proc = subprocess.Popen(
        [str(native(version)), "app-server"],
        env=env,
        cwd=home,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    records: list[dict] = []

    def send(message: dict) -> None:
        proc.stdin.write((json.dumps(message) + "\n").encode())
        proc.stdin.flush()

    def until(test) -> dict:
        for raw in iter(proc.stdout.readline, b""):
            message = json.loads(raw)
            if "method" in message:
                records.append(message)
            if test(message):
                return message
        raise RuntimeError("app-server ended early")

    try:
        send(
            {
                "id": 1,
                "method": "initialize",
                "params": {"clientInfo": {"name": "capture", "version": "0"}},
            }
        )
        until(lambda m: m.get("id") == 1)
        send({"method": "initialized"})
        send(
            {
                "id": 2,
                "method": "thread/start",
                "params": {"cwd": home, "sandbox": "read-only", "approvalPolicy": "never"},
            }
        )
        thread = until(lambda m: m.get("id") == 2)["result"]["thread"]["id"]
        send(
            {
                "id": 3,
                "method": "turn/start",
                "params": {"threadId": thread, "input": [{"type": "text", "text": "a red fox"}]},
            }
        )
        until(lambda m: m.get("method") == "turn/completed")
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    return _write(f"app-server-v2-{version}.jsonl", records, home)


def main(versions: list[str]) -> None:
    with UpstreamStandin() as standin:
        for version in versions:
            print(exec_rollout(version, standin))
        print(app_server_turn(versions[-1], standin))


if __name__ == "__main__":
    from codex_image_server.engine.versions import TESTED

    main(sys.argv[1:] or list(TESTED))
