"""The cluster's PostgreSQL: a generated password checked with scram-sha-256
on every connection (no trust), listening on loopback only, its directory
its own user's (0700) and no parent directory opened for it."""

from __future__ import annotations

import os
import pwd
import stat
import tempfile
from pathlib import Path

import pytest
from codex_image_cluster.postgres import Postgres


def _modes(path: Path) -> dict[str, int]:
    return {str(p): stat.S_IMODE(p.stat().st_mode) for p in path.resolve().parents}


@pytest.fixture(scope="module")
def pg():
    parents_before = _modes(Path(tempfile.gettempdir()) / "x")
    server = Postgres().start()
    yield server, parents_before
    server.remove()


def test_the_password_is_needed_and_checked_with_scram(pg):
    server, _ = pg
    assert server.psql("select 1").stdout.strip() == "1"
    for wrong in ("", "not-the-password"):
        refused = server.psql("select 1", password=wrong)
        assert refused.returncode != 0, refused.stdout
        assert "password" in refused.stderr, refused.stderr
    rules = server.psql("select distinct auth_method from pg_hba_file_rules").stdout.split()
    assert rules == ["scram-sha-256"], rules
    stored = server.psql(
        "select rolpassword from pg_authid where rolname = 'postgres'"
    ).stdout.strip()
    assert stored.startswith("SCRAM-SHA-256$")
    assert server.password in server.url and server.password not in server.shown_url


def test_it_listens_on_loopback_only(pg):
    server, _ = pg
    assert server.psql("show listen_addresses").stdout.strip() == "127.0.0.1"


def test_its_directory_is_its_own_and_no_parent_was_opened(pg):
    server, parents_before = pg
    owner = pwd.getpwnam("postgres").pw_uid if os.geteuid() == 0 else os.geteuid()
    for path in (server.directory, server.data):
        st = path.stat()
        assert st.st_uid == owner and stat.S_IMODE(st.st_mode) == 0o700, (path, oct(st.st_mode))
    assert not (server.directory / "initdb-password").exists()
    assert _modes(Path(tempfile.gettempdir()) / "x") == parents_before


def test_a_directory_its_user_cannot_reach_is_refused_not_opened(tmp_path):
    if os.geteuid() != 0:
        pytest.skip(
            "only root hands the data to another user"
        )  # make test runs as root: it runs there
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    server = Postgres(private / "pg")
    with pytest.raises(RuntimeError, match="cannot reach"):
        server.init()
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
