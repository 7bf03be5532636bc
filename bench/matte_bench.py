"""The transparency step's cost on a codex-sized image (1254x1254), as a
ratio to the PNG decode + encode every transparent image needs anyway,
measured in the same run; medians over several runs.

    .venv/bin/python bench/matte_bench.py [--runs 7] [--size 1254]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from codex_image_server.finishing import transparency

from tests.transparency import pictures


def median_s(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--size", type=int, default=1254)
    args = ap.parse_args()
    fg, alpha = pictures.truth()
    size = (args.size, args.size)
    fg = np.asarray(Image.fromarray(fg).resize(size))
    alpha = (
        np.asarray(Image.fromarray((alpha * 255).astype(np.uint8)).resize(size)).astype(np.float32)
        / 255
    )
    keyed = pictures.png(pictures.on_key(fg, alpha, transparency.GREEN))
    real = pictures.png(np.dstack([fg, (alpha * 255).astype(np.uint8)]))

    def baseline():
        with Image.open(io.BytesIO(keyed)) as img:
            img.convert("RGBA").save(io.BytesIO(), format="PNG")

    base = median_s(baseline, args.runs)
    matte = median_s(lambda: transparency.make_transparent(keyed, transparency.GREEN), args.runs)
    model = median_s(lambda: transparency.make_transparent(real, transparency.GREEN), args.runs)
    print(f"{args.size}x{args.size}, median of {args.runs} runs")
    print(f"  baseline PNG decode+encode   {base * 1000:8.1f} ms")
    print(
        f"  keyed matte (make_transparent) {matte * 1000:6.1f} ms  = {matte / base:.1f}x baseline"
    )
    print(f"  image-model alpha check       {model * 1000:7.1f} ms  = {model / base:.1f}x baseline")


if __name__ == "__main__":
    main()
