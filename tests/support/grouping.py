"""How `make test` splits the suite: which tests go to one pytest-xdist
worker together, and which groups start first.

A group runs on one worker, in collection order, while other workers run
other groups. By default a group is one test file, so a module-scoped server
starts once; the tables below widen that where a resource is shared or heavy.
"""

from __future__ import annotations

from xdist.scheduler import LoadScopeScheduling

# Path prefix -> group: tests that may run beside others but not beside each other.
GROUPS = {
    # One headless Chromium per module: two at once would starve each other.
    "tests/console/": "chromium",
    # Three replicas, PostgreSQL, s3proxy and HAProxy per module.
    "tests/cluster/": "cluster",
    # One session-scoped server for the whole directory.
    "tests/plugin/": "plugin",
}


# Groups handed out first, longest first: each spends a minute or more
# starting processes or waiting on timeouts, and left to xdist's order (most
# tests first) these few-test groups would start last and keep one worker
# busy after the others finish. The stress slice mostly waits (lingering
# sockets, header timeouts, slow probes: ~17 s of CPU in ~48 s alone), so
# beside the others it costs the pass little; its docstring says why its
# bounds hold there.
HEAVY_FIRST = (
    "cluster",
    "tests/stress/test_stress.py",
    "tests/packaging/test_install.py",
    "chromium",
)


def _lookup(path: str, table: dict[str, str]) -> str | None:
    return next((value for prefix, value in table.items() if path.startswith(prefix)), None)


def group_of(nodeid: str) -> str:
    """The group of a test: its table entry, else its file."""
    path = nodeid.split("::", 1)[0]
    return _lookup(path, GROUPS) or path


class GroupScheduling(LoadScopeScheduling):
    """xdist's scope scheduling with `group_of` as the scope: HEAVY_FIRST,
    then the groups with the most tests. Our own rather than `xdist_group`
    marks: xdist finds those through a rename of the test's node id that
    pytest 9 no longer allows."""

    _reordered = False

    def _split_scope(self, nodeid: str) -> str:
        return group_of(nodeid)

    def _assign_work_unit(self, node) -> None:
        # The first call comes once schedule() has queued every group.
        if not self._reordered:
            self._reordered = True
            for group in reversed(HEAVY_FIRST):
                if group in self.workqueue:
                    self.workqueue.move_to_end(group, last=False)
        super()._assign_work_unit(node)
