"""Debian's headless Chromium driven by selenium, for the console's tests and
its benchmark. Both binaries come from apt (`make chromium`); selenium is
given their paths, so its driver manager never runs and nothing is downloaded."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = os.environ.get("CONSOLE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CONSOLE_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
LAPTOP = (1280, 900)
PHONE = (390, 844)


def missing_binaries() -> list[str]:
    return [b for b in (CHROMIUM, CHROMEDRIVER) if not (shutil.which(b) or Path(b).exists())]


def chromium(workdir: Path, size: tuple[int, int] = LAPTOP, extra_flags: tuple[str, ...] = ()):
    """A fresh headless Chromium with its profile and driver log under `workdir`
    (`extra_flags`: e.g. a --host-resolver-rules for a hostile page's name)."""

    missing = missing_binaries()
    if missing:
        raise RuntimeError(
            f"{', '.join(missing)} missing: run `make chromium` (Debian's chromium, "
            "chromium-driver)"
        )
    os.environ.setdefault("SE_OFFLINE", "true")  # never let selenium reach for a download
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        f"--window-size={size[0]},{size[1]}",
        f"--user-data-dir={Path(workdir) / 'chromium-profile'}",
        *extra_flags,
    ):
        options.add_argument(flag)
    service = Service(
        executable_path=CHROMEDRIVER, log_output=str(Path(workdir) / "chromedriver.log")
    )
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    return driver
