"""The web console's page weight and time to interactive on loopback, in
Debian's headless Chromium, cold cache each load.

    .venv/bin/python bench/console_bench.py [--runs 7]

Page weight: bytes over the wire for everything the first view loads (HTML,
modules, CSS, icon, /healthz and /v1/capabilities), from Resource Timing's
transferSize (headers included), split into the static console and the API.
Time to interactive: navigation start to the `console-ready` mark, set when
the capabilities are in the form and Generate is enabled. Baseline in the
same run: the same cold navigation to a bare asset (/console/icon.svg), so
the ratio says what the console costs over the browser's own floor.
Medians over --runs loads.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: tests.* lives at the root

from selenium.webdriver.support.ui import WebDriverWait

from tests.support.browser import chromium
from tests.support.server_proc import start_server

WEIGHT = """
const nav = performance.getEntriesByType('navigation')[0];
const res = performance.getEntriesByType('resource');
const api = res.filter(r => /\\/(v1|healthz)/.test(new URL(r.name).pathname));
const assets = res.filter(r => !api.includes(r));
const sum = list => list.reduce((n, r) => n + r.transferSize, 0);
const body = list => list.reduce((n, r) => n + r.decodedBodySize, 0);
return {static: nav.transferSize + sum(assets), api: sum(api), requests: 1 + res.length,
        decoded: nav.decodedBodySize + body(assets),
        ready: performance.getEntriesByName('console-ready')[0].startTime,
        dcl: nav.domContentLoadedEventEnd};
"""


def cold_load(driver, url: str) -> None:
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
    driver.execute_cdp_cmd("Network.clearBrowserCache", {})
    driver.get("about:blank")
    driver.get(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, start_server(Path(tmp) / "srv", http=True) as srv:
        driver = chromium(Path(tmp))
        try:
            loads, floors = [], []
            for _ in range(args.runs):
                cold_load(driver, srv.http_base + "/console/icon.svg")
                floors.append(
                    driver.execute_script(
                        "return performance.getEntriesByType('navigation')[0].responseEnd"
                    )
                )
                cold_load(driver, srv.http_base + "/")
                WebDriverWait(driver, 30, poll_frequency=0.02).until(
                    lambda d: d.execute_script("return document.body.dataset.ready === 'true'")
                )
                loads.append(driver.execute_script(WEIGHT))
        finally:
            driver.quit()
    med = {k: statistics.median(load[k] for load in loads) for k in loads[0]}
    floor = statistics.median(floors)
    print(
        f"console page weight (cold, over the wire): static {med['static'] / 1024:.1f} KiB "
        f"({med['decoded'] / 1024:.1f} KiB unpacked) + API {med['api'] / 1024:.1f} KiB, "
        f"{int(med['requests'])} requests"
    )
    print(
        f"time to interactive (median of {args.runs}): {med['ready']:.0f} ms "
        f"(DOMContentLoaded {med['dcl']:.0f} ms); bare-asset navigation {floor:.0f} ms, "
        f"ratio {med['ready'] / floor:.1f}x"
    )


if __name__ == "__main__":
    main()
