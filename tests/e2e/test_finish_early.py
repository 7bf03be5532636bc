"""Finish early, real codex end to end: once codex's image is final, the
server takes it and stops codex before the model's closing turn."""

from __future__ import annotations

import threading
import time

import pytest

from tests.support import procs

from . import realcodex
from .calls import generate, image_bytes, sha256

pytestmark = pytest.mark.realcodex

CLOSING_S = 60  # the stand-in holds its closing reply this long


def _watch_codex(server_pid: int, seen: set[int], stop: threading.Event) -> None:
    while not stop.is_set():
        seen.update(realcodex.codex_processes(server_pid))
        stop.wait(0.01)


@pytest.mark.parametrize(
    "count,size",
    [(1, "1024x1024"), (1, "3000x2800"), (2, "1024x1024")],
    ids=["one", "large-image", "two"],
)
def test_codex_is_stopped_before_its_closing_turn_and_the_image_is_intact(
    server, fresh, count, size
):
    seen: set[int] = set()
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_codex, args=(server.pid, seen, stop), daemon=True)
    watcher.start()
    started = time.monotonic()
    try:
        images, progress, summary = generate(
            server.stub(),
            count=count,
            prompt=f"a kite over the sea [[upstream: closing_slow={CLOSING_S} "
            f"default_size={size} noise]]",
        )
        took = time.monotonic() - started
    finally:
        stop.set()
        watcher.join()
    assert summary is not None and len(images) == count
    assert took < CLOSING_S / 2, "the request waited for the closing turn"
    # Every codex process of the request is gone, looked up by pid...
    assert seen, "no codex process was seen"
    assert not [pid for pid in seen if realcodex.alive(pid)]
    # ...while the stand-in's closing reply is still pending: codex was
    # stopped either before it asked for the closing turn or while waiting
    # for it (then it hung up), never after receiving it.
    closing = [r for r in fresh.records.all("responses") if r["after_tool_output"]]
    assert len(closing) <= count
    assert not any(r.get("finished") for r in closing)
    assert procs.wait_until(
        lambda: all(
            r.get("client_closed") for r in fresh.records.all("responses") if r["after_tool_output"]
        ),
        timeout=10,
    )
    assert [p.phase for p in progress].count("image.final") == count
    # The image is whole: byte for byte what the upstream returned.
    returned = {img["sha256"] for img in fresh.images_returned()}
    for img in images:
        data = image_bytes(server.stub(), img.id)
        assert sha256(data) == img.sha256 and img.sha256 in returned and len(data) == img.byte_size
