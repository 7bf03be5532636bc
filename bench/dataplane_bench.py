"""The HTTP surfaces on the dataplane's handlers against a baseline tree, in one run.

    .venv/bin/python bench/dataplane_bench.py [--base layout] [--rounds 7] [--caps 2000]
        [--generates 20]

Two servers side by side, each started from its own source tree: the
baseline (a git ref, `layout` by default: the shim through the fake
ServicerContext, extracted with `git archive` into a temporary directory and
put first on PYTHONPATH) and this tree. Same settings, same fake codex, one
keep-alive connection to each. Per round, request by request to one server
then the other (which goes first alternates by round), so a shared
machine's load falls on both alike:
1. `GET /v1/capabilities`: --caps requests each, the median latency;
2. a fake-codex Generate through `POST /v1/images/generate` (one image,
   non-streaming): --generates requests each, the median latency.
Printed: the median over --rounds rounds of each figure, and the ratio
baseline / this tree (1.0: as fast; the target is >= 0.95, no slower).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: tests.* lives at the root

from tests.support.server_proc import start_server


def extract(ref: str, into: Path) -> Path:
    """`ref`'s server/ (our packages) into `into`; returns the directory for PYTHONPATH."""
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "server"], check=True, capture_output=True
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "server"


def imports_from(pythonpath: str | None) -> str:
    """Where a server started with this PYTHONPATH takes codex_image_server from."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    done = subprocess.run(
        [sys.executable, "-c", "import codex_image_server as m; print(m.__path__[0])"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=str(ROOT),
    )
    return done.stdout.strip()


class Client:
    """One keep-alive connection."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, method: str, path: str, body: bytes | None = None) -> bytes:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        self.conn.request(method, path, body=body, headers=headers)
        resp = self.conn.getresponse()
        data = resp.read()
        assert resp.status == 200, (resp.status, data[:300])
        return data

    def close(self) -> None:
        self.conn.close()


GENERATE = json.dumps({"prompt": "a bench picture", "count": 1, "size": "1024x1024"}).encode()


def capabilities(client: Client) -> None:
    client.call("GET", "/v1/capabilities")


def generate(client: Client) -> None:
    answer = json.loads(client.call("POST", "/v1/images/generate", GENERATE))
    assert len(answer["data"]) == 1, answer


def interleaved(
    clients: dict[str, Client], call, n: int, order: tuple[str, ...]
) -> dict[str, float]:
    """`call` n times on each server, one server after the other request by
    request, so both see the same moments of a shared machine's load: the
    median latency of each."""
    took: dict[str, list[float]] = {name: [] for name in order}
    for _ in range(n):
        for name in order:
            t0 = time.perf_counter()
            call(clients[name])
            took[name].append(time.perf_counter() - t0)
    return {name: statistics.median(values) * 1000 for name, values in took.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="layout", help="the baseline's git ref")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--caps", type=int, default=2000, help="capabilities requests per round")
    parser.add_argument("--generates", type=int, default=20, help="generations per round")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dataplane-bench-") as tmp:
        tmp_path = Path(tmp)
        base_path = extract(args.base, tmp_path / "base")
        trees = {"base": str(base_path), "this": None}
        origins = {name: imports_from(path) for name, path in trees.items()}
        assert origins["base"].startswith(str(base_path)), origins
        assert origins["this"].startswith(str(ROOT)), origins
        figures: dict[str, dict[str, list[float]]] = {
            name: {"capabilities_ms": [], "generate_ms": []} for name in trees
        }
        with (
            start_server(
                tmp_path / "base-run", http=True, env={"PYTHONPATH": trees["base"]}
            ) as base,
            start_server(tmp_path / "this-run", http=True) as this,
        ):
            clients = {"base": Client(base.http_port), "this": Client(this.http_port)}
            try:
                # Warm: imports, first answers, the fake's first run.
                interleaved(clients, capabilities, 200, ("base", "this"))
                interleaved(clients, generate, 2, ("base", "this"))
                for round_no in range(args.rounds):
                    order = ("base", "this") if round_no % 2 == 0 else ("this", "base")
                    for key, call, n in (
                        ("capabilities_ms", capabilities, args.caps),
                        ("generate_ms", generate, args.generates),
                    ):
                        for name, ms in interleaved(clients, call, n, order).items():
                            figures[name][key].append(ms)
            finally:
                for client in clients.values():
                    client.close()
    report = {
        "base": args.base,
        "rounds": args.rounds,
        "caps_per_round": args.caps,
        "generates_per_round": args.generates,
    }
    for key in ("capabilities_ms", "generate_ms"):
        base_ms, this_ms = (
            statistics.median(figures["base"][key]),
            statistics.median(figures["this"][key]),
        )
        report[key] = {
            "base": round(base_ms, 4),
            "this": round(this_ms, 4),
            "ratio_base_over_this": round(base_ms / this_ms, 3),
        }
    print(json.dumps(report, indent=1))
    worst = min(report[k]["ratio_base_over_this"] for k in ("capabilities_ms", "generate_ms"))
    print(f"worst ratio {worst:.3f} (target >= 0.95: {'met' if worst >= 0.95 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
