"""Every known image shape (fixtures/README.md names each file's source),
read through the two readers the engine has: the locator (after the run:
`read_rollout` + `locate`) and the finish-early watcher (`RolloutWatch`,
tailing a rollout that grows in pieces while codex runs). An image in a shape
we do not know is "unsupported", never "no image"; a rollout with no image
made stays "no image"."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from pathlib import Path

import pytest
from codex_image_server.engine import failures, image_locator
from codex_image_server.engine.image_watch import FinalImage, RolloutWatch
from codex_image_server.engine.versions import TESTED
from codex_image_server.errors import Kind

from tests.upstream_standin.pictures import make_png

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REAL_EXTENSION = sorted(p.name for p in FIXTURES.glob("extension-0.*.jsonl"))
# fixture -> (where the image's bytes are: "path" at its saved path, "result" only in base64)
KNOWN = {
    **{name: "path" for name in REAL_EXTENSION},
    "app-server-v2-0.171.0.jsonl": "path",
    "legacy-end.jsonl": "path",
    "legacy-call.jsonl": "result",
}
UNKNOWN = ("unknown-kind.jsonl", "unknown-output-only.jsonl", "extension-file-id.jsonl")
WAIT_S = 10.0


def test_the_real_fixtures_cover_every_tested_version():
    assert REAL_EXTENSION == [f"extension-{v}.jsonl" for v in TESTED]


class Run:
    """A fixture made concrete: a CODEX_HOME with the rollout (and the image
    file, for shapes that name one) where codex would have put them."""

    def __init__(self, root: Path, name: str):
        self.home = root / "home"
        self.png = make_png(96, 64)
        text = (FIXTURES / name).read_text()
        text = text.replace("{{CODEX_HOME}}", str(self.home)).replace(
            "{{RESULT}}", base64.b64encode(self.png).decode()
        )
        self.lines = [line + "\n" for line in text.splitlines()]
        self.thread_id = _thread_id(self.lines)
        self.saved_path = _saved_path(self.lines)
        day = time.strftime("%Y/%m/%d", time.localtime())
        self.rollout = (
            self.home / "sessions" / day / f"rollout-2026-12-07T12-00-00-{self.thread_id}.jsonl"
        )
        self.rollout.parent.mkdir(parents=True)

    def write_image(self) -> None:
        if self.saved_path:
            Path(self.saved_path).parent.mkdir(parents=True, exist_ok=True)
            Path(self.saved_path).write_bytes(self.png)

    def write_rollout(self) -> None:
        self.rollout.write_text("".join(self.lines))


def _thread_id(lines: list[str]) -> str:
    for line in lines:
        record = json.loads(line)
        payload = record.get("payload") or {}
        params = record.get("params") or {}
        found = (
            payload.get("id") if record.get("type") == "session_meta" else params.get("threadId")
        )
        if found:
            return found
    raise AssertionError("fixture names no thread")


def _saved_path(lines: list[str]) -> str:
    for line in lines:
        for key in ('"savedPath":"', '"saved_path":"'):
            if key in line:
                return line.split(key, 1)[1].split('"', 1)[0]
    return ""


# -- the locator ----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_the_locator_reads_each_known_shape(tmp_path, name):
    run = Run(tmp_path, name)
    run.write_rollout()
    facts = image_locator.read_rollout(image_locator.find_rollout(run.home, run.thread_id))
    assert not facts.unsupported and not facts.failures
    assert facts.revised_prompt == "a red fox"
    if KNOWN[name] == "path":
        assert facts.saved_paths and set(facts.saved_paths) == {run.saved_path}
        run.write_image()
        # The path the item names, not the generated_images folder: move the
        # file where only the item's path finds it.
        moved = run.home / "elsewhere.png"
        os.rename(run.saved_path, moved)
        facts.saved_paths[:] = [str(moved)]
        found = image_locator.locate(run.home, run.thread_id, facts)
        assert found is not None and found.data == run.png and found.source == "rollout.savedPath"
    # With no file anywhere, the base64 `result` (every known fixture carries one).
    facts.saved_paths.clear()
    found = image_locator.locate(run.home, run.thread_id, facts)
    assert found is not None and found.data == run.png


@pytest.mark.parametrize("name", UNKNOWN)
def test_an_image_in_an_unknown_shape_is_unsupported_naming_version_and_range(tmp_path, name):
    run = Run(tmp_path, name)
    run.write_rollout()
    facts = image_locator.read_rollout(image_locator.find_rollout(run.home, run.thread_id))
    assert image_locator.locate(run.home, run.thread_id, facts) is None
    assert facts.unsupported, "an image was made: this must not read as 'no image'"
    error = failures.unsupported(facts.cli_version, facts.unsupported)
    assert error.kind is Kind.FAILED_PRECONDITION and error.reason == "CODEX_UNSUPPORTED"
    version = {"extension-file-id.jsonl": "0.169.0"}.get(name, "0.180.0")
    assert f"codex {version} " in error.message and "0.169.0-0.171.0" in error.message
    assert error.metadata == {
        "codex_version": version,
        "tested_versions": "0.169.0, 0.170.0, 0.171.0",
    }


def test_references_and_view_image_are_no_sign_of_a_made_image(tmp_path):
    run = Run(tmp_path, "no-image.jsonl")
    run.write_rollout()
    facts = image_locator.read_rollout(image_locator.find_rollout(run.home, run.thread_id))
    assert image_locator.locate(run.home, run.thread_id, facts) is None
    assert not facts.unsupported and facts.cli_version == "0.171.0"


def test_a_failed_item_of_each_new_shape_is_a_failure_not_an_image(tmp_path):
    run = Run(tmp_path, "app-server-v2-0.171.0.jsonl")
    run.lines = [
        line.replace('"status":"completed"', '"status":"failed"').replace(
            '"failure":null', '"failure":"image generation failed: http 403"'
        )
        for line in run.lines
    ]
    run.write_rollout()
    facts = image_locator.read_rollout(run.rollout)
    assert not facts.saved_paths and not facts.results and not facts.unsupported
    assert facts.failures == ["image generation failed: http 403"]


# -- the finish-early watcher ---------------------------------------------------


def _watch(run: Run) -> tuple[RolloutWatch, list[FinalImage], threading.Event]:
    seen: list[FinalImage] = []
    done = threading.Event()

    def on_final(final: FinalImage) -> None:
        seen.append(final)
        done.set()

    return RolloutWatch(run.home, run.thread_id, on_final), seen, done


def _grow(run: Run, lines: list[str], piece: int = 97) -> None:
    """Append the lines in small pieces, as codex writes a long line."""
    with open(run.rollout, "a") as f:
        for line in lines:
            for at in range(0, len(line), piece):
                f.write(line[at : at + piece])
                f.flush()


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_the_watcher_sees_each_known_shape_final(tmp_path, name):
    run = Run(tmp_path, name)
    run.write_image()
    run.rollout.touch()
    watch, seen, done = _watch(run)
    watch.start()
    try:
        _grow(run, run.lines)
        assert done.wait(WAIT_S), f"the watcher never saw the image of {name}"
    finally:
        watch.stop()
    (final,) = seen
    assert final.revised_prompt == "a red fox"
    # Legacy writes the call (base64 only) before the end event (with a path):
    # either is the whole image.
    assert (final.data or Path(final.saved_path).read_bytes()) == run.png
    assert final.saved_path in ("", run.saved_path)
    if KNOWN[name] == "result":
        assert final.data and not final.saved_path


@pytest.mark.parametrize("name", UNKNOWN + ("no-image.jsonl",))
def test_the_watcher_never_takes_an_unknown_shape_for_a_final_image(tmp_path, name):
    """Followed by a known completed line (a sentinel): the watcher must
    report that one, having read past every line of the fixture."""
    run = Run(tmp_path, name)
    sentinel = Run(tmp_path / "sentinel", "extension-0.171.0.jsonl")
    sentinel.write_image()
    closing = [
        line
        for line in sentinel.lines
        if '"image_gen.generation"' in line and '"completed"' in line
    ]
    run.rollout.touch()
    watch, seen, done = _watch(run)
    watch.start()
    try:
        _grow(run, run.lines + closing)
        assert done.wait(WAIT_S)
    finally:
        watch.stop()
    assert [f.saved_path for f in seen] == [sentinel.saved_path]
