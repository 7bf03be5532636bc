"""The History tab on the real history API (ListImages, DeleteImage): pages,
search, delete, and the copied curl / grpcurl commands run for real."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.shim.client import request
from tests.support.server_proc import REPO, start_server

PAGE = 12  # the console's page size
GRPCURL = REPO / ".tools" / "bin" / "grpcurl"


@pytest.fixture(scope="module")
def history_server(tmp_path_factory):
    """A server of its own with 14 images: 12 foxes (newest first), 2 herons."""
    with start_server(tmp_path_factory.mktemp("console-history"), http=True) as srv:
        for prompt, count in (
            ("a heron in reeds", 2),
            ("a fox, take 1", 4),
            ("a fox, take 2", 4),
            ("a fox, take 3", 4),
        ):
            reply = request(
                srv.http_base, "POST", "/v1/images/generate", {"prompt": prompt, "count": count}
            )
            assert reply.status == 200, reply.body
        yield srv


def cards(console) -> list[str]:
    return console.js(
        "return [...document.querySelectorAll('#gallery .card')].map(c => c.dataset.imageId)"
    )


def open_history(console):
    console.open("/#history").wait_ready()
    console.wait(lambda: len(cards(console)) > 0, message="the gallery stayed empty")


def test_gallery_pages_newest_first_and_searches(history_server, console_for):
    console = console_for(history_server)
    open_history(console)
    first = cards(console)
    assert len(first) == PAGE
    assert console.find("#history-newer").get_attribute("disabled")
    assert not console.find("#history-older").get_attribute("disabled")
    prompts = console.js(
        "return [...document.querySelectorAll('#gallery .prompt')].map(p => p.textContent)"
    )
    assert prompts[0] == "a fox, take 3" and "a heron in reeds" not in prompts
    console.screenshot("history-page-1")
    console.find("#history-older").click()
    console.wait(lambda: len(cards(console)) == 2, message="page 2 never showed the two oldest")
    second = cards(console)
    assert not set(first) & set(second)
    assert console.text("#history-page") == "Page 2"
    assert console.find("#history-older").get_attribute("disabled")
    console.find("#history-newer").click()
    console.wait(lambda: cards(console) == first)
    # Search by prompt text: only the herons, on one page.
    search = console.find("#history-search")
    search.send_keys("HERON\n")
    console.wait(lambda: len(cards(console)) == 2, message="search did not narrow to the herons")
    assert set(cards(console)) == set(second)
    assert console.find("#history-older").get_attribute("disabled")
    # A card's parameters include its request's record from the history.
    console.find("#gallery .card details summary").click()
    console.wait(
        lambda: console.find_all('#gallery .card dd[data-key="Images asked"]'),
        message="no request record in the parameters",
    )
    assert console.text('#gallery .card dd[data-key="Images asked"]') == "2"
    assert console.text('#gallery .card dd[data-key="Outcome"]') == "completed"
    assert console.text('#gallery .card dd[data-key="References"]') == "0"
    console.screenshot("history-search-heron")
    search.clear()
    search.send_keys("no such thing\n")
    console.wait(lambda: "No images match" in console.text("#history-message"))
    console.screenshot("history-search-empty")


def test_delete_removes_the_image(history_server, console_for):
    console = console_for(history_server)
    open_history(console)
    victim = cards(console)[0]
    assert request(history_server.http_base, "GET", f"/v1/images/{victim}").status == 200
    card = console.find(f'#gallery .card[data-image-id="{victim}"]')
    card.find_element("xpath", ".//button[text()='Delete']").click()
    console.driver.switch_to.alert.accept()
    console.wait(lambda: victim not in cards(console), message="the card stayed")
    assert request(history_server.http_base, "GET", f"/v1/images/{victim}").status == 404
    assert request(history_server.http_base, "GET", f"/v1/images/{victim}/file").status == 404
    open_history(console)  # a fresh load does not bring it back
    assert victim not in cards(console)


def test_copied_commands_run(history_server, console_for):
    console = console_for(history_server)
    open_history(console)
    card = console.find("#gallery .card")
    for kind in ("curl", "grpcurl"):
        card.find_element("xpath", f".//button[text()='Copy as {kind}']").click()
    curl = console.wait(lambda: card.get_attribute("data-curl"))
    grpcurl = console.wait(lambda: card.get_attribute("data-grpcurl"))
    assert "a fox, take" in curl and "127.0.0.1:17342" in grpcurl
    env = {**os.environ, "CODEX_IMAGE_SERVER_API_KEY": ""}
    out = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"] == "completed"
    command = grpcurl.replace("127.0.0.1:17342", history_server.grpc_target).replace(
        "grpcurl", str(GRPCURL), 1
    )
    out = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=60, env=env
    )
    assert out.returncode == 0, out.stderr
    assert '"summary"' in out.stdout
