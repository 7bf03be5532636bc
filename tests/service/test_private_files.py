"""What the server writes is its user's alone: the state and output
directories 0700, the index (all prompts) and its -wal/-shm 0600, images
0600; and what an older run left open is closed at start."""

from __future__ import annotations

import os
import stat

from tests.support.generating import generate
from tests.support.server_proc import start_server


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_state_index_and_images_are_private(tmp_path):
    state, output = tmp_path / "state", tmp_path / "out"
    with start_server(tmp_path, state_dir=state, output_dir=output) as srv:
        images, err = generate(srv.stub(), "a private picture", count=2)
        assert err is None
        # While the server runs, in WAL mode: the index and both companions.
        index = [state / f"index.sqlite3{suffix}" for suffix in ("", "-wal", "-shm")]
        assert all(p.exists() for p in index)
        assert {p.name: _mode(p) for p in index} == {p.name: 0o600 for p in index}
        assert _mode(state) == 0o700 and _mode(output) == 0o700
        files = [p for p in output.rglob("*") if p.is_file()]
        assert len(files) >= 2 and {_mode(p) for p in files} == {0o600}
        # Every directory the server made under its state directory too.
        assert {_mode(p) for p in state.rglob("*") if p.is_dir()} <= {0o700}


def test_an_older_runs_open_modes_are_closed_at_start(tmp_path):
    state, output = tmp_path / "state", tmp_path / "out"
    with start_server(tmp_path, state_dir=state, output_dir=output) as srv:
        assert generate(srv.stub(), "before")[1] is None
    os.chmod(state, 0o755)
    os.chmod(output, 0o755)
    for name in os.listdir(state):
        if name.startswith("index.sqlite3"):
            os.chmod(state / name, 0o644)
    with start_server(tmp_path, state_dir=state, output_dir=output):
        assert _mode(state) == 0o700 and _mode(output) == 0o700
        assert _mode(state / "index.sqlite3") == 0o600
