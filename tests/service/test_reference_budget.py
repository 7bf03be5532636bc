"""The contact sheet decodes its tiles under the decode budget every request
shares, like validation's decodes: no decode outside the budget, so the
pixels held at once stay bounded however many requests arrive."""

from __future__ import annotations

import io

from codex_image_server.request import imaging, references
from codex_image_server.request.params import Reference
from PIL import Image


class RecordingBudget(imaging.MemoryBudget):
    """A real budget that also remembers what was held, and the most at once."""

    def __init__(self, limit: int):
        super().__init__(limit)
        self.held: list[int] = []

    def hold(self, n, cancelled=None):
        self.held.append(n)
        return super().hold(n, cancelled)


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 60, 90)).save(out, format="PNG")
    return out.getvalue()


def test_every_tile_decode_holds_the_shared_budget(monkeypatch, tmp_path):
    budget = RecordingBudget(imaging.DECODE_BUDGET.limit)
    monkeypatch.setattr(imaging, "DECODE_BUDGET", budget)
    sizes = [(640, 480), (800, 600), (320, 320), (1024, 512), (500, 700), (900, 300), (256, 256)]
    refs = tuple(
        Reference(i, _png(w, h), "image/png", w, h, f"r{i}") for i, (w, h) in enumerate(sizes)
    )
    plan = references.write(refs, tmp_path / "references")
    assert [u.usage for u in plan.uses].count("contact_sheet") == 3
    # The three tiled references (the 5th to 7th), each at its full RGBA decode cost.
    assert budget.held == [w * h * 4 for w, h in sizes[4:]]
    assert budget._used == 0  # everything held was given back
