"""Plain pytest runs only the fast slice: tests marked `stress` are
deselected (not skipped) unless `-m stress` asks for them."""

from __future__ import annotations


def pytest_collection_modifyitems(config, items):
    if "stress" in (config.getoption("markexpr") or ""):
        return
    keep = [item for item in items if item.get_closest_marker("stress") is None]
    dropped = [item for item in items if item.get_closest_marker("stress") is not None]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
