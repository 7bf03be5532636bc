"""Generate in the browser: progress per candidate, images as they land, a
Cancel that kills codex, references by the file input, field errors."""

from __future__ import annotations

import io
import time

from PIL import Image
from selenium.webdriver.support.ui import Select

from tests.support import procs


def fill(console, prompt: str, count: int = 1, size: str | None = None, custom: str | None = None):
    box = console.find("#prompt")
    box.clear()
    box.send_keys(prompt)
    count_box = console.find("#count")
    count_box.clear()
    count_box.send_keys(str(count))
    if size:
        Select(console.find("#size")).select_by_value(size)
    if custom is not None:
        field = console.find("#custom-size")
        field.clear()
        field.send_keys(custom)


def bars(console) -> list[float]:
    return console.js(
        "return [...document.querySelectorAll('#results progress')].map(p => p.value)"
    )


def loaded_images(console) -> list[dict]:
    return console.js("""return [...document.querySelectorAll('#results .slot img[data-loaded]')]
        .filter(i => i.complete && i.naturalWidth > 0)
        .map(i => ({w: i.naturalWidth, h: i.naturalHeight,
                    id: i.closest('.card').dataset.imageId}))""")


def test_two_candidates_show_moving_progress_then_both_images(open_server, console_for):
    console = console_for(open_server).open().wait_ready()
    fill(console, "two foxes [[fake delay=1.5]]", count=2)
    console.find("#generate-button").click()
    seen: list[set[float]] = [set(), set()]
    deadline = time.monotonic() + 30
    while len(loaded_images(console)) < 2:
        assert time.monotonic() < deadline, f"images never appeared; bars seen {seen}"
        for i, value in enumerate(bars(console)[:2]):
            seen[i].add(value)
        time.sleep(0.03)
    console.screenshot("two-candidates")
    for i in range(2):
        # Moved: values strictly between empty and full were shown before the image.
        between = {v for v in seen[i] if 0 < v < 100}
        assert len(between) >= 2, f"candidate {i + 1}'s bar did not move: {sorted(seen[i])}"
    assert bars(console) == [100, 100]
    images = loaded_images(console)
    assert {(i["w"], i["h"]) for i in images} == {(256, 256)}
    assert len({i["id"] for i in images}) == 2
    console.wait(lambda: "Done" in console.text("#generate-message"))


def test_cancel_kills_the_codex_runs(open_server, console_for):
    console = console_for(open_server).open().wait_ready()
    fill(console, "a very slow one [[fake delay=60]]", count=2)
    console.find("#generate-button").click()
    request_id = console.wait(
        lambda: console.js("return document.querySelector('#results .run')?.dataset.requestId")
    )
    console.wait(
        lambda: len(open_server.runs_of(request_id)) == 2, message="codex runs never started"
    )
    runs = open_server.runs_of(request_id)
    assert all(procs.running(r["pid"]) for r in runs)
    console.wait(
        lambda: all(v >= 10 for v in bars(console)), message="progress never showed the start"
    )
    console.find("#cancel-button").click()
    assert procs.wait_until(lambda: procs.all_gone(runs), timeout=15), (
        f"codex runs still alive after Cancel: {runs}"
    )
    console.wait(lambda: "Cancelled" in console.text("#generate-message"))
    assert [s.text for s in console.find_all("#results .slot .stage")] == ["Cancelled", "Cancelled"]
    assert not console.find("#generate-button").get_attribute("disabled")
    assert console.find("#cancel-button").get_attribute("disabled")
    console.screenshot("cancelled")


def png_file(tmp_path, width: int, height: int):
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (40, 120, 200)).save(buffer, "PNG")
    path = tmp_path / f"reference-{width}x{height}.png"
    path.write_bytes(buffer.getvalue())
    return path


def test_reference_by_file_input_shows_its_size_and_reaches_the_server(
    open_server, console_for, tmp_path
):
    console = console_for(open_server).open().wait_ready()
    console.find("#reference-input").send_keys(str(png_file(tmp_path, 300, 200)))
    console.wait(
        lambda: "300×200" in console.text("#reference-list"), message="no thumbnail with its size"
    )
    assert console.js("return document.querySelector('#reference-list img').naturalWidth") == 300
    assert console.text("#reference-status") == "1 reference"
    # A file that is not an image is refused by the server, next to its thumbnail.
    bogus = tmp_path / "notes.png"
    bogus.write_bytes(b"not an image at all")
    console.find("#reference-input").send_keys(str(bogus))
    console.wait(lambda: len(console.find_all("#reference-list li")) == 2)
    fill(console, "in the style of the reference")
    console.find("#generate-button").click()
    console.wait(
        lambda: console.find_all("#reference-list li.invalid"), message="bad reference not flagged"
    )
    bad = console.find_all("#reference-list li.invalid")
    assert len(bad) == 1 and bad[0].get_attribute("data-index") == "1"
    assert bad[0].find_element("css selector", ".field-error").text
    console.screenshot("reference-refused")
    bad[0].find_element("css selector", "button").click()  # remove it, keep the good one
    console.find("#generate-button").click()
    console.wait(lambda: len(loaded_images(console)) == 1, message="no image with the reference")
    console.screenshot("reference-used")


def test_bad_size_shows_the_error_next_to_the_size_field(open_server, console_for):
    console = console_for(open_server).open().wait_ready()
    fill(console, "a square", size="custom", custom="123x45")
    console.find("#generate-button").click()
    console.wait(lambda: console.text("#error-size"), message="no error under the size field")
    assert "multiple of 16" in console.text("#error-size")
    assert "invalid" in console.find('[data-field="size"]').get_attribute("class")
    assert "invalid_size" in console.text("#generate-message")
    # Only the size is wrong: no other field carries an error, nothing ran.
    others = console.js("""return [...document.querySelectorAll('.field-error')]
        .filter(e => e.id !== 'error-size' && e.textContent).map(e => e.id)""")
    assert others == []
    assert console.find_all("#results .slot") == []
    console.screenshot("bad-size")


def test_count_and_aspect_errors_land_on_their_fields(open_server, console_for):
    console = console_for(open_server).open().wait_ready()
    fill(console, "wide", count=9, size="2K")
    console.find("#generate-button").click()
    console.wait(lambda: console.text("#error-count"))
    assert "1..4" in console.text("#error-count")
    assert console.text("#error-size") == ""


def test_a_failure_after_progress_is_explained_and_marks_the_candidates(open_server, console_for):
    console = console_for(open_server).open().wait_ready()
    fill(console, "doomed [[fake mode=fail]]", count=2)
    console.find("#generate-button").click()
    console.wait(
        lambda: "codex_exec_failed" in console.text("#generate-message"),
        message="no message for the failed run",
    )
    assert console.text("#generate-message").startswith("Codex failed while generating.")
    assert [s.text for s in console.find_all("#results .slot .stage")] == ["Failed", "Failed"]
    assert not console.find("#generate-button").get_attribute("disabled")
    console.screenshot("codex-failed")


def test_transparent_background_gives_an_image_with_real_alpha(open_server, console_for):
    console = console_for(open_server).open().wait_ready()
    fill(console, "a glass bottle")
    background = Select(console.find("#background"))
    assert "transparent" in [o.get_attribute("value") for o in background.options]
    background.select_by_value("transparent")
    Select(console.find("#output_format")).select_by_value("png")
    console.find("#generate-button").click()
    console.wait(
        lambda: len(loaded_images(console)) == 1, message="the transparent image never appeared"
    )
    # The corner of the delivered image is see-through, the centre is not:
    # read back from the image the console shows.
    alphas = console.js("""const img = document.querySelector('#results .slot img[data-loaded]');
        const c = document.createElement('canvas');
        c.width = img.naturalWidth; c.height = img.naturalHeight;
        const g = c.getContext('2d'); g.drawImage(img, 0, 0);
        return [g.getImageData(0, 0, 1, 1).data[3],
                g.getImageData(img.naturalWidth >> 1, img.naturalHeight >> 1, 1, 1).data[3]];""")
    assert alphas[0] == 0 and alphas[1] == 255, alphas
    console.screenshot("transparent")


def test_jpeg_with_a_transparent_background_is_refused_on_the_background_field(
    open_server, console_for
):
    console = console_for(open_server).open().wait_ready()
    fill(console, "a glass bottle")
    Select(console.find("#background")).select_by_value("transparent")
    Select(console.find("#output_format")).select_by_value("jpeg")
    console.find("#generate-button").click()
    console.wait(
        lambda: console.text("#error-background"), message="no error under the background field"
    )
    assert (
        "jpeg" in console.text("#error-background").lower()
        or "alpha" in console.text("#error-background").lower()
    )
    assert console.find_all("#results .slot") == []
