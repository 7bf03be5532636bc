"""The server's run-time dependencies, the one thing pyproject.toml cannot say.

The generated `codeximage` stubs belong to the client package
(clients/python), so the server depends on `codex-image-client`. Built from a
checkout (`pip install .`, `pipx install .`), that dependency is the
checkout's own clients/python, so a plain install works before anything is
published. Built from the sdist (`make dist`, `python -m build`: the sdist
carries no clients/), it is the released range instead, which is what a
published wheel must name.
"""

import os
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
CHECKOUT_CLIENT = HERE / "clients" / "python"


def client_range() -> str:
    """Client and server are released together with one version; any client
    of the same minor version, at least as new, carries the stubs we need."""
    version = HERE.joinpath("VERSION").read_text().strip()
    major, minor = version.split(".")[:2]
    return f"codex-image-client>={version},<{major}.{int(minor) + 1}"


def client_requirement() -> str:
    # The dev venv (Makefile) installs the client editable first and sets
    # CODEX_IMAGE_CLIENT_INSTALLED: naming the same directory again by URL
    # would make pip reinstall it non-editable.
    if CHECKOUT_CLIENT.joinpath("pyproject.toml").is_file() and not os.environ.get(
        "CODEX_IMAGE_CLIENT_INSTALLED"
    ):
        return f"codex-image-client @ {CHECKOUT_CLIENT.as_uri()}"
    return client_range()


setup(
    install_requires=[
        client_requirement(),
        # Pinned exactly: generated gRPC code refuses an older runtime, so every
        # grpcio-* package moves in lock step with grpcio-tools.
        "grpcio==1.85.1",
        "grpcio-health-checking==1.85.1",
        "grpcio-reflection==1.85.1",
        "grpcio-status==1.85.1",
        "protobuf==7.36.2",
        "googleapis-common-protos==1.76.0",
        "pillow==13.0.0",
        "aiohttp==3.14.5",
        "numpy==2.4.6",
        # The process layer's portable path (macOS; tested on Linux too): engine/os_procs.py.
        "psutil==7.2.2",
        "prometheus-client==0.26.0",
        # The MCP surface (/mcp) and the stdio bridge's tool definitions: the
        # official SDK (it brings starlette/anyio; no pin above moves).
        "mcp==2.3.0",
    ]
)
