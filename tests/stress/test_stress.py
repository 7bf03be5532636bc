"""The fast slice of the stress suite (the full run is `make stress`).

It runs in `make test` over xdist's workers, beside other tests, as a group
that starts first (tests/support/grouping.py), not in a pass of its own
after them: it mostly waits (sockets lingering 11 s, header timeouts, slow
probes; ~17 s of CPU in ~48 s alone), so there it costs the pass little
instead of adding ~55 s to every run. Its bounds are the slice's (run.py
FAST), made for a busy machine: a dropped caller's codex gone within 1.05 s
(1.25 s if it ignores SIGTERM), its slots and directory back within 1.85 s,
the server settled 3 s after the last caller, no zombie for 0.5 s, the
limits' timeouts plus 3 s; the gzip bombs' bound is CPU time, which
neighbours do not add to. Measured with `stress-ng --cpu 3` and `--cpu 4`
beside it (harder than three xdist workers on two cores; three runs): codex
gone after at most 243 ms, slots back after 294 ms, settled in 0.07 s,
nothing broken. So they still catch what they guard (a cancel that leaves a
codex running for seconds, slots or directories kept, a zombie, anything
left behind), and a neighbour does not trip them. The tight bounds (50 ms
plus 150 ms of scheduling) are `make stress`'s, which runs alone."""

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
