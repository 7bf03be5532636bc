"""The history index at scale.

    .venv/bin/python bench/history_bench.py [--images 100000] [--calls 300] [--runs 3]

1. ListImages latency, page of 50, through gRPC against the real server with
   --images records in its SQLite index (goal: p99 <= 20 ms with a prompt
   filter). Three filters: none, a common word (~10% of prompts) and a rare
   one (~0.1%, so a page needs a long scan). The index is filled directly
   (records only; listing never touches the bytes).
2. The per-request cost of recording history: one request's row at arrival,
   its outcome at the end and one image record, on the same 100k-row file;
   reported in microseconds and as a share of a fake-codex Generate
   round trip measured in the same run (the baseline).
Medians over --runs runs; p50/p99 within each run over --calls calls.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from codex_image_server.request.params import GenerationSpec
from codex_image_server.request.sizes import ResolvedSize
from codex_image_server.store import INDEX_FILE, OutputStore, SqliteMetadata, StoredImage, new_id
from codex_image_server.team.history import History
from codeximage.v1 import image_service_pb2 as pb

from tests.support.server_proc import start_server

WORDS = (
    "harbour lighthouse fox meadow castle river forest portrait city night neon watercolour "
    "mountain "
    "desert robot dragon garden winter summer ocean bridge market kitchen library train station "
    "cathedral village festival storm sunrise"
).split()
COMMON, RARE = "lantern", "zeppelin"


def prompt(rng: random.Random, i: int) -> str:
    words = rng.sample(WORDS, 8)
    if i % 10 == 0:
        words.insert(3, COMMON)
    if i % 1000 == 7:
        words.insert(5, RARE)
    return "a painting of " + " ".join(words)


def fill(index: Path, n: int) -> None:
    meta = SqliteMetadata(index)
    rng = random.Random(12)
    now = int(time.time() * 1000)
    batch = []
    for i in range(n):
        batch.append(
            StoredImage(
                id=new_id(),
                request_id=f"req-{i // 2}",
                index=i % 2,
                label=f"Candidate {i % 2 + 1}",
                mime_type="image/png",
                width=1024,
                height=1024,
                byte_size=1_500_000,
                sha256="0" * 64,
                revised_prompt="",
                thread_id="",
                prompt=prompt(rng, i),
                requested_size="auto",
                resolved_size="auto",
                aspect="",
                quality="auto",
                output_format="png",
                duration_ms=40_000,
                created_unix_ms=now - (n - i) * 1000,
                key_name=("ci", "alice", "bob")[i % 3],
                account="default",
            )
        )
        if len(batch) == 10_000:
            meta.add_images(batch)
            batch = []
    if batch:
        meta.add_images(batch)
    meta.close()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def list_latency(stub, calls: int, **filters) -> tuple[float, float]:
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        page = stub.ListImages(pb.ListImagesRequest(page_size=50, **filters), timeout=30)
        times.append((time.perf_counter() - started) * 1000)
        assert page.images
    return percentile(times, 50), percentile(times, 99)


def generate_ms(stub, n: int) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        list(stub.Generate(pb.GenerateRequest(prompt="bench [[fake delay=0]]"), timeout=60))
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def recording_us(state: Path, n: int) -> float:
    store = OutputStore(state / "rec-out", state / INDEX_FILE)
    history = History(store.metadata)
    spec = GenerationSpec(
        "bench-rec", "a painting of a lantern", 1, ResolvedSize("auto"), "", "auto", "png", ()
    )
    started = time.perf_counter()
    for _ in range(n):
        seq = history.begin(spec, "ci", "grpc", int(time.time() * 1000))
        store.metadata.add_image(
            StoredImage(
                id=new_id(),
                request_id="bench-rec",
                index=0,
                label="Candidate 1",
                mime_type="image/png",
                width=1,
                height=1,
                byte_size=1,
                sha256="0" * 64,
                revised_prompt="",
                thread_id="",
                prompt=spec.prompt,
                requested_size="auto",
                resolved_size="auto",
                aspect="",
                quality="auto",
                output_format="png",
                duration_ms=1,
                created_unix_ms=int(time.time() * 1000),
                request_seq=seq,
            )
        )
        history.finish(
            seq,
            "completed",
            None,
            duration_ms=1,
            queue_wait_ms=0,
            codex_ms=1,
            accounts=("default",),
            image_ids=("img",),
        )
    elapsed = (time.perf_counter() - started) / n * 1e6
    store.close()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="history-bench-") as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        fill(tmp / "state" / INDEX_FILE, args.images)
        print(f"filled {args.images} image records in {time.perf_counter() - started:.1f} s")
        with start_server(tmp) as srv:
            stub = srv.stub()
            stub.ListImages(pb.ListImagesRequest(page_size=50), timeout=30)  # warm
            for _ in range(args.runs):
                for name, filters in (
                    ("no filter", {}),
                    (f"prompt '{COMMON}' (~10%)", {"prompt_contains": COMMON}),
                    (f"prompt '{RARE}' (~0.1%)", {"prompt_contains": RARE}),
                    ("prompt + key", {"prompt_contains": COMMON, "key_name": "alice"}),
                ):
                    p50, p99 = list_latency(stub, args.calls, **filters)
                    results.setdefault(f"ListImages {name} p50 ms", []).append(p50)
                    results.setdefault(f"ListImages {name} p99 ms", []).append(p99)
                results.setdefault("Generate round trip (fake codex, delay 0) ms", []).append(
                    generate_ms(stub, 20)
                )
        for _ in range(args.runs):
            results.setdefault("recording history per request us", []).append(
                recording_us(tmp / "state", 2000)
            )
    print(
        f"\nmedians over {args.runs} runs, {args.images} images in the index, {args.calls} calls "
        "per figure"
    )
    for name, values in results.items():
        print(f"  {name:55s} {statistics.median(values):9.2f}")
    rec = statistics.median(results["recording history per request us"]) / 1000
    base = statistics.median(results["Generate round trip (fake codex, delay 0) ms"])
    print(f"  {'recording / Generate round trip':55s} {rec / base:9.4f}")
    p99 = statistics.median(results[f"ListImages prompt '{COMMON}' (~10%) p99 ms"])
    print(
        "goal: ListImages with a prompt filter p99 <= 20 ms: "
        f"{'met' if p99 <= 20 else 'NOT met'} ({p99:.2f} ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
