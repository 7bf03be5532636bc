"""The project installed the way a user installs it, with no access to the
checkout: wheels built from the sdists, installed into fresh venvs (server in
one, client alone in another) and with pipx; each installed command is run
from a directory outside the checkout with PYTHONPATH unset, the server is
started and called with the separately installed client library and CLI.

What costs CPU here is pip, so each install does only what its test is
about. The third-party wheels are downloaded from PyPI once per module
(`dependencies`) and every install reads them with `--no-index
--find-links`: still wheels from PyPI, unpacked into each fresh venv, just
not fetched, hashed and resolved against the index four times. The venvs are
made `--without-pip` and installed into with this venv's pip (`pip
--python`, pip >= 22.3): ensurepip cost ~3 s of CPU per venv and the pip it
left there was never used. `pip install .` keeps pip's build isolation (the
isolated build environment gets setuptools, from the wheelhouse) and pipx
keeps its own shared pip, both as a user's install does."""

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
# This venv's pip, for every venv here (`--python`).
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check"]


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


@pytest.fixture(scope="module")
def dependencies(wheelhouse, elsewhere, tmp_path_factory) -> Path:
    """Every third-party wheel the packages need, from PyPI once: the server's
    closure (which holds the client's), setuptools for `pip install .`'s
    isolated builds and the pip pipx puts in its shared venv."""
    deps = tmp_path_factory.mktemp("deps")
    run(
        [
            *PIP,
            "download",
            "--quiet",
            "--dest",
            deps,
            "--find-links",
            wheelhouse,
            "codex-image-server",
            "setuptools>=68",
            "pip>=26.1",
        ],
        cwd=elsewhere,
    )
    for own in deps.glob("codex_image_*"):
        own.unlink()  # ours come from `wheelhouse` or the checkout, never from here
    return deps


def fresh_venv(path: Path, *requirements, find_links: list[Path], cwd: Path) -> Path:
    run([sys.executable, "-m", "venv", "--without-pip", path], cwd=cwd)
    run(
        [
            *PIP,
            "--python",
            path / "bin" / "python",
            "install",
            "--quiet",
            "--no-compile",
            *offline(*find_links),
            *requirements,
        ],
        cwd=cwd,
    )
    return path / "bin"


def installed(bin_dir: Path, cwd: Path) -> set[str]:
    """The distributions in a venv, by name."""
    out = run([*PIP, "--python", bin_dir / "python", "list", "--format=json"], cwd=cwd).stdout
    return {d["name"] for d in json.loads(out)}


def offline(*find_links: Path) -> list:
    """pip options: packages from these directories only."""
    return ["--no-index", *(arg for d in find_links for arg in ("--find-links", d))]


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
def client_bin(wheelhouse, dependencies, elsewhere, tmp_path_factory) -> Path:
    """The client alone, from its wheel, in a venv of its own."""
    bin_dir = fresh_venv(
        tmp_path_factory.mktemp("client") / "venv",
        "codex-image-client",
        find_links=[wheelhouse, dependencies],
        cwd=elsewhere,
    )
    assert (
        run([bin_dir / "codex-image", "--version"], cwd=elsewhere).stdout.strip()
        == f"codex-image {VERSION}"
    )
    # No server code came with it.
    names = installed(bin_dir, elsewhere)
    assert "codex-image-client" in names and "codex-image-server" not in names, names
    return bin_dir


def test_wheels_in_fresh_venvs_serve_and_call(
    wheelhouse, dependencies, client_bin, elsewhere, tmp_path
):
    server_bin = fresh_venv(
        tmp_path / "server-venv",
        "codex-image-server",
        find_links=[wheelhouse, dependencies],
        cwd=elsewhere,
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


def test_pip_install_from_the_checkout(dependencies, elsewhere, tmp_path):
    """What a new user types: `pip install .` into a clean venv, no client
    installed first, with pip's build isolation (both packages built from
    the checkout in an environment pip fills with setuptools; only the index
    is the module's wheelhouse). Both commands work, and the installed CLI
    calls the installed server."""
    bin_dir = fresh_venv(tmp_path / "venv", REPO, find_links=[dependencies], cwd=elsewhere)
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


def test_pipx_install_from_the_checkout(dependencies, client_bin, elsewhere, tmp_path):
    """README's pipx command, `pipx install .`: the server and its client
    dependency from the same checkout, in a venv pipx makes (with its shared
    pip, which pipx fetches too: from the wheelhouse, like every package
    here); called with the separately installed client."""
    pipx_env = clean_env(
        PIPX_HOME=str(tmp_path / "pipx"),
        PIPX_BIN_DIR=str(tmp_path / "bin"),
        PIPX_MAN_DIR=str(tmp_path / "man"),
    )
    pip_args = " ".join(str(a) for a in ["--no-compile", *offline(dependencies)])
    run(
        [sys.executable, "-m", "pipx", "install", f"--pip-args={pip_args}", REPO],
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
