"""The fast slice of the stress suite (the full run is `make stress`)."""

from __future__ import annotations

import pytest

from .run import FAST, FULL, run


def test_fast_slice_leaves_nothing_behind(tmp_path):
    lines = []
    figures = run(FAST, report=lines.append, tmp=tmp_path)
    print("\n".join(lines))
    assert figures.requests > 100
    assert not figures.failures(), "\n".join(lines)


@pytest.mark.stress
def test_full_run_leaves_nothing_behind(tmp_path):
    lines = []
    figures = run(FULL, report=lines.append, tmp=tmp_path)
    print("\n".join(lines))
    assert not figures.failures(), "\n".join(lines)
