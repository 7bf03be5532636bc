"""The console in a real headless Chromium (Debian's chromium and
chromium-driver, installed by `make chromium`), driven by selenium, against
real servers with the fake codex. No browser is downloaded: selenium is given
both binaries, so its driver manager never runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

# The shim tests' servers (one open, one with a key), started per module.
from tests.shim.conftest import KEY, keyed_server, open_server  # noqa: F401 - pytest fixtures for the tests here
from tests.support.browser import LAPTOP, PHONE, chromium, missing_binaries  # noqa: F401 - re-exported for the tests here


class Console:
    """One browser tab on one server's console, with bounded waits."""

    def __init__(self, driver, base: str, shots: Path):
        self.driver, self.base, self.shots = driver, base, shots

    def open(self, path: str = "/") -> Console:
        self.driver.get(self.base + path)
        return self

    def wait(self, condition, timeout: float = 45.0, message: str = ""):
        return WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(
            lambda d: condition(), message or getattr(condition, "__name__", "")
        )

    def wait_ready(self) -> Console:
        self.wait(
            lambda: self.driver.execute_script("return document.body.dataset.ready === 'true'"),
            message="console never became ready",
        )
        return self

    def find(self, css: str):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css: str) -> str:
        return self.find(css).text

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def screenshot(self, name: str) -> Path:
        """The whole page (the window grows to the page's height for the shot)."""
        self.shots.mkdir(parents=True, exist_ok=True)
        path = self.shots / f"{name}.png"
        size = self.driver.get_window_size()
        height = self.js(
            "return Math.max(document.documentElement.scrollHeight, window.innerHeight)"
        )
        chrome = size["height"] - self.js("return window.innerHeight")
        self.driver.set_window_size(size["width"], min(int(height) + chrome, 4000))
        try:
            assert self.driver.save_screenshot(str(path)), f"no screenshot saved at {path}"
        finally:
            self.driver.set_window_size(size["width"], size["height"])
        return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if missing_binaries():
        pytest.fail(
            f"{missing_binaries()} missing: run `make chromium` (Debian's chromium and "
            "chromium-driver)"
        )
    driver = chromium(tmp_path_factory.mktemp("chromium"))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def console_for(browser, tmp_path):
    """console_for(srv) -> a Console on srv, in a fresh tab state (sessionStorage
    cleared), laptop-sized; screenshots land in this test's tmp dir."""

    def make(srv, size=LAPTOP) -> Console:
        browser.set_window_size(*size)
        console = Console(browser, srv.http_base, tmp_path / "screenshots")
        console.open("/console/icon.svg")  # same origin, so its storage can be cleared
        browser.execute_script("sessionStorage.clear()")
        return console

    return make
