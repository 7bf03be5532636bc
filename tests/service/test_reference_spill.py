"""References go to disk as soon as a request is admitted, before it waits
for a slot: a queue of requests with large references holds them in files,
not in the server's memory, which stays bounded however long the queue."""

from __future__ import annotations

import io
import os

from codeximage.v1 import image_service_pb2 as pb
from PIL import Image

from tests.support import procs
from tests.support.server_proc import start_server


def _png(side: int) -> bytes:
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, format="PNG")
    return out.getvalue()


def test_a_queued_requests_references_are_on_disk_before_its_slot(tmp_path):
    with start_server(tmp_path, args=["--max-concurrent", "1"]) as srv:
        stub = srv.stub()
        running = stub.Generate(
            pb.GenerateRequest(prompt="x [[fake delay=60]]", request_id="holds-the-slot")
        )
        assert procs.wait_until(lambda: len(srv.runs_of("holds-the-slot")) == 1, timeout=10)
        images = [_png(64), _png(48)]
        queued = stub.Generate(
            pb.GenerateRequest(
                prompt="x",
                request_id="queued-refs",
                references=[pb.Reference(image=i) for i in images],
            )
        )
        assert next(iter(queued)).progress.stage == pb.Progress.STAGE_QUEUED
        work = srv.state_dir / "work"
        [workdir] = [d for d in work.iterdir() if d.name.startswith("queued-refs-")]
        assert [
            (workdir / "references" / f"reference-{n}.png").read_bytes() for n in (1, 2)
        ] == images
        assert not srv.runs_of("queued-refs")  # nothing of it has started
        queued.cancel()
        running.cancel()
        assert procs.wait_until(lambda: not workdir.exists(), timeout=10)
        assert procs.wait_until(lambda: procs.all_gone(srv.fake_runs()), timeout=10)
