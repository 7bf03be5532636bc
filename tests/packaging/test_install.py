"""The project installed the way a user installs it, with no access to the
checkout: wheels built from the sdists, installed into fresh venvs (server in
one, client alone in another) and with pipx; each installed command is run
from a directory outside the checkout with PYTHONPATH unset, the server is
started and called with the separately installed client library and CLI.
Packages come from the wheelhouse and PyPI (pip's cache), nothing else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from codex_image_server.engine import binary

from tests.support.server_proc import REPO, start_server

VERSION = (REPO / "VERSION").read_text().strip()
INSTALL_TIMEOUT_S = 600


def clean_env(**extra) -> dict:
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "CODEX_IMAGE_CLIENT_INSTALLED")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(extra)
    return env


def run(cmd, *, cwd, env=None, timeout=INSTALL_TIMEOUT_S) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )
    assert proc.returncode == 0, (
        f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory) -> Path:
    """A working directory outside the checkout."""
    path = tmp_path_factory.mktemp("elsewhere")
    assert REPO not in path.resolve().parents
    return path


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory) -> Path:
    """sdist, then the wheel built from that sdist (so the sdist is complete),
    for both packages. --no-isolation: the pinned setuptools of the dev venv."""
    dist = tmp_path_factory.mktemp("dist")
    for project in (REPO / "clients" / "python", REPO):
        run([sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, project], cwd=dist)
    names = sorted(p.name for p in dist.iterdir())
    assert names == [
        f"codex_image_client-{VERSION}-py3-none-any.whl",
        f"codex_image_client-{VERSION}.tar.gz",
        f"codex_image_server-{VERSION}-py3-none-any.whl",
        f"codex_image_server-{VERSION}.tar.gz",
    ]
    return dist


def fresh_venv(path: Path, *requirements, find_links: Path, cwd: Path) -> Path:
    run([sys.executable, "-m", "venv", path], cwd=cwd)
    run(
        [
            path / "bin" / "python",
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--find-links",
            find_links,
            *requirements,
        ],
        cwd=cwd,
    )
    return path / "bin"


def records(bin_dir: Path, distribution: str) -> set[str]:
    code = (
        "import importlib.metadata as m, sys; "
        "print('\\n'.join(str(f) for f in m.distribution(sys.argv[1]).files))"
    )
    out = run([bin_dir / "python", "-c", code, distribution], cwd=bin_dir).stdout
    return {
        line
        for line in out.splitlines()
        if line and ".dist-info" not in line and "__pycache__" not in line
    }


def call_server(target: str, cli: Path, python: Path, out: Path, cwd: Path) -> None:
    """The installed CLI and library against a running server."""
    env = clean_env(CODEX_IMAGE_ADDR=target)
    health = json.loads(run([cli, "health"], cwd=cwd, env=env, timeout=60).stdout)
    assert health["ready"] is True and health["server_version"] == VERSION
    saved = run(
        [cli, "generate", "a red fox", "-n", "2", "-o", out, "--request-id", "pkg-1"],
        cwd=cwd,
        env=env,
        timeout=120,
    ).stdout.split()
    assert sorted(Path(p).name for p in saved) == ["pkg-1-1.png", "pkg-1-2.png"]
    assert all(Path(p).read_bytes().startswith(b"\x89PNG") for p in saved)
    code = (
        "import sys; from codex_image_client import Client; "
        "c = Client(sys.argv[1], timeout=10); print(c.capabilities().max_images, "
        "c.health().server_version)"
    )
    assert run([python, "-c", code, target], cwd=cwd, env=env, timeout=60).stdout.split() == [
        "4",
        VERSION,
    ]


@pytest.fixture(scope="module")
def client_bin(wheelhouse, elsewhere, tmp_path_factory) -> Path:
    """The client alone, from its wheel, in a venv of its own."""
    bin_dir = fresh_venv(
        tmp_path_factory.mktemp("client") / "venv",
        "codex-image-client",
        find_links=wheelhouse,
        cwd=elsewhere,
    )
    assert (
        run([bin_dir / "codex-image", "--version"], cwd=elsewhere).stdout.strip()
        == f"codex-image {VERSION}"
    )
    # No server code came with it.
    assert (
        "codex-image-server"
        not in run([bin_dir / "python", "-m", "pip", "list", "--format=json"], cwd=elsewhere).stdout
    )
    return bin_dir


def test_wheels_in_fresh_venvs_serve_and_call(wheelhouse, client_bin, elsewhere, tmp_path):
    server_bin = fresh_venv(
        tmp_path / "server-venv", "codex-image-server", find_links=wheelhouse, cwd=elsewhere
    )
    assert (
        run([server_bin / "codex-image-server", "--version"], cwd=elsewhere).stdout.strip()
        == f"codex-image-server {VERSION}"
    )
    # Installed copies, not the checkout: every module comes from the venv.
    where = run(
        [
            server_bin / "python",
            "-c",
            "import codex_image_server.version as s, codex_image_shim as h, "
            "codeximage as c, codex_image_client as k; print(s.__file__, h.__file__, c.__file__, "
            "k.__file__)",
        ],
        cwd=elsewhere,
    ).stdout.split()
    assert all(Path(p).is_relative_to(tmp_path / "server-venv") for p in where), where
    # The two packages own disjoint files: uninstalling one never breaks the other.
    assert not records(server_bin, "codex-image-server") & records(server_bin, "codex-image-client")

    with start_server(
        tmp_path / "srv", command=[str(server_bin / "codex-image-server")], cwd=elsewhere
    ) as srv:
        call_server(
            srv.grpc_target,
            client_bin / "codex-image",
            client_bin / "python",
            tmp_path / "out",
            elsewhere,
        )

    # No Makefile around an installed server: without codex it names npm, not `make codex`.
    doctor = subprocess.run(
        [
            str(server_bin / "codex-image-server"),
            "doctor",
            "--codex-bin",
            str(tmp_path / "none"),
            "--grpc-port",
            "0",
            "--http-port",
            "0",
        ],
        cwd=elsewhere,
        env=clean_env(),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert doctor.returncode == 1
    assert f"run: npm install -g @openai/codex@{binary.PINNED_VERSION}" in doctor.stdout, (
        doctor.stdout
    )
    assert "make codex" not in doctor.stdout


def test_published_wheel_names_the_client_by_range(wheelhouse):
    """Built from the sdist (what gets published), the server names the client
    by its release range, never by a path on the machine that built it."""
    wheel = wheelhouse / f"codex_image_server-{VERSION}-py3-none-any.whl"
    metadata = (
        zipfile.ZipFile(wheel).read(f"codex_image_server-{VERSION}.dist-info/METADATA").decode()
    )
    requires = [
        line
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist: codex-image-client")
    ]
    major, minor = VERSION.split(".")[:2]
    assert requires == [f"Requires-Dist: codex-image-client<{major}.{int(minor) + 1},>={VERSION}"]


def test_pip_install_from_the_checkout(elsewhere, tmp_path):
    """What a new user types: `pip install .` into a clean venv, no client
    installed first. Both commands work, and the installed CLI calls the
    installed server."""
    bin_dir = fresh_venv(tmp_path / "venv", REPO, find_links=tmp_path, cwd=elsewhere)
    assert (
        run([bin_dir / "codex-image-server", "--version"], cwd=elsewhere).stdout.strip()
        == f"codex-image-server {VERSION}"
    )
    assert (
        run([bin_dir / "codex-image", "--version"], cwd=elsewhere).stdout.strip()
        == f"codex-image {VERSION}"
    )
    with start_server(
        tmp_path / "srv", command=[str(bin_dir / "codex-image-server")], cwd=elsewhere
    ) as srv:
        call_server(
            srv.grpc_target,
            bin_dir / "codex-image",
            bin_dir / "python",
            tmp_path / "out",
            elsewhere,
        )


def test_pipx_install_from_the_checkout(client_bin, elsewhere, tmp_path):
    """README's pipx command, `pipx install .`: the server and its client
    dependency from the same checkout, in a venv pipx makes; called with the
    separately installed client."""
    pipx_env = clean_env(
        PIPX_HOME=str(tmp_path / "pipx"),
        PIPX_BIN_DIR=str(tmp_path / "bin"),
        PIPX_MAN_DIR=str(tmp_path / "man"),
    )
    run(
        [sys.executable, "-m", "pipx", "install", "--pip-args=--no-compile", REPO],
        cwd=elsewhere,
        env=pipx_env,
    )
    server = tmp_path / "bin" / "codex-image-server"
    assert (
        run([server, "--version"], cwd=elsewhere).stdout.strip() == f"codex-image-server {VERSION}"
    )
    with start_server(tmp_path / "srv", command=[str(server)], cwd=elsewhere) as srv:
        call_server(
            srv.grpc_target,
            client_bin / "codex-image",
            client_bin / "python",
            tmp_path / "out",
            elsewhere,
        )
