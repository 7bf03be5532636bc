"""Keys, the Status tab and the phone layout, in the browser."""

from __future__ import annotations

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from tests.shim.conftest import KEY
from tests.support.browser import PHONE


def test_wrong_key_is_refused_with_a_clear_message_then_the_right_one_works(
    keyed_server, console_for
):
    console = console_for(keyed_server).open()
    console.wait(lambda: console.find("#key-panel").is_displayed(), message="no key prompt")
    assert console.find("#generate-button").get_attribute("disabled")  # nothing works without a key
    console.find("#api-key").send_keys("not-the-key\n")
    console.wait(
        lambda: "rejected" in console.text("#key-message"), message="no message for a wrong key"
    )
    assert "unauthorized" in console.text("#key-message")
    assert console.js("return sessionStorage.length") == 0  # a wrong key is not kept
    console.screenshot("wrong-key")
    console.find("#api-key").send_keys(KEY + "\n")
    console.wait_ready()
    assert not console.find("#key-panel").is_displayed()
    assert console.js("return Object.values(sessionStorage)") == [KEY]  # this tab only
    box = console.find("#prompt")
    box.send_keys("with a key")
    console.find("#generate-button").click()
    # The image itself is fetched with the key (an <img src> could not send one).
    console.wait(
        lambda: console.js("return !!document.querySelector('#results img[data-loaded]')"),
        message="no image with the key",
    )
    # A reload in the same tab keeps the key; forgetting it asks again.
    console.open().wait_ready()
    console.find("#forget-key").click()
    assert console.find("#key-panel").is_displayed()
    assert console.js("return sessionStorage.length") == 0


def test_without_keys_no_key_is_asked_for(open_server, console_for):
    console = console_for(open_server).open().wait_ready()
    assert not console.find("#key-panel").is_displayed()
    assert not console.find("#forget-key").is_displayed()


def test_status_shows_readiness_codex_and_slots(open_server, console_for):
    console = console_for(open_server).open("/#status").wait_ready()
    console.wait(
        lambda: console.find_all('#status-body dd[data-key="version"]'), message="no codex version"
    )
    assert console.text("#status-badge") == "ready"
    assert console.text('#status-body dd[data-key="version"]') == "codex-cli 0.169.0"
    assert console.text('#status-body dd[data-key="logged_in"]') == "yes"
    assert console.text('#status-body dd[data-key="limit"]') == "4"
    assert console.text('#status-body dd[data-key="queue_limit"]') == "16"
    console.find("#capabilities summary").click()  # folded: it is long
    assert console.text('#status-body dd[data-key="max_images"]') == "4"
    console.screenshot("status")


def test_phone_width_has_no_sideways_scroll_and_keyboard_reaches_generate(open_server, console_for):
    console = console_for(open_server, size=PHONE).open().wait_ready()
    assert console.js("return document.documentElement.scrollWidth <= window.innerWidth")
    # Every control has a label a screen reader can read.
    unlabelled = console.js("""return [...document.querySelectorAll('input, select, textarea')]
        .filter(e => !e.hidden && e.type !== 'hidden' && !(e.labels && e.labels.length)
                     && !e.getAttribute('aria-label'))
        .map(e => e.id)""")
    assert unlabelled == []
    # Tab from the prompt reaches the Generate button without a mouse.
    console.find("#prompt").click()
    visited = []
    for _ in range(20):
        visited.append(console.js("return document.activeElement.id"))
        if visited[-1] == "generate-button":
            break
        ActionChains(console.driver).send_keys(Keys.TAB).perform()
    assert visited[-1] == "generate-button", f"Tab never reached Generate: {visited}"
    assert {"count", "size", "quality", "output_format", "reference-input"} <= set(visited)
    console.screenshot("phone")
