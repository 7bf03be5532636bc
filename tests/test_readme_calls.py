"""README's "First calls", run as written against a live server (the fake
codex, ephemeral ports put where README has the default ones), from a fresh
directory the way a reader types them."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.support.server_proc import REPO, start_server

README = (REPO / "README.md").read_text()


def first_calls() -> str:
    return README.split("\n## First calls\n", 1)[1].split("\n## ", 1)[0]


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", first_calls(), re.S | re.M)


def commands() -> list[str]:
    """Each shell command, continuation lines joined, comments dropped."""
    out = []
    for block in blocks("sh"):
        for command in block.replace("\\\n", " ").splitlines():
            command = re.sub(r"\s+#.*$", "", command).strip()
            if command and command != "make grpcurl":  # `make test` has installed it
                out.append(command)
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with start_server(tmp_path_factory.mktemp("readme"), http=True) as srv:
        yield srv


@pytest.fixture
def reader_dir(tmp_path):
    """A directory like the checkout's top, as far as the commands go."""
    for name in (".tools", ".venv"):
        (tmp_path / name).symlink_to(REPO / name)
    return tmp_path


def with_ports(text: str, srv) -> str:
    return text.replace("17342", str(srv.grpc_port)).replace("17341", str(srv.http_port))


def test_readme_has_the_calls():
    shown = " ".join(commands())
    for call in ("grpcurl", "curl", "codex-image generate"):
        assert call in shown, call
    assert len(blocks("python")) == 1 and "OpenAI(base_url=" in blocks("python")[0]


@pytest.mark.parametrize("command", commands())
def test_each_shell_command_works(server, reader_dir, command):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CODEX_IMAGE", "OPENAI_"))}
    env["CODEX_IMAGE_ADDR"] = server.grpc_target  # what the CLI's default address would be
    done = subprocess.run(
        ["bash", "-c", with_ports(command, server)],
        cwd=reader_dir,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    if (
        "generate" in command or "Generate" in command or ":wait" in command
    ):  # the wait returns the images
        assert "img_" in done.stdout or list((reader_dir / "out").glob("*.png")), done.stdout


def test_the_openai_sdk_snippet_works(server, reader_dir):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CODEX_IMAGE", "OPENAI_"))}
    done = subprocess.run(
        [sys.executable, "-c", with_ports(blocks("python")[0], server)],
        cwd=reader_dir,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (reader_dir / "fox.png").read_bytes().startswith(b"\x89PNG")
