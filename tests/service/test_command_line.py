"""`codex-image-server --help` and `codex-image-server doctor`, run as a
person runs them: real subprocesses of the server's command."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from codex_image_server import settings

from tests.support.server_proc import REPO, fake_codex_launcher, start_server


def server_command(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CODEX_IMAGE_SERVER_")}
    return subprocess.run(
        [sys.executable, "-m", "codex_image_server", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        cwd=REPO,
        env={**clean, **(env or {})},
    )


@pytest.fixture(scope="module")
def help_text() -> str:
    done = server_command("--help")
    assert done.returncode == 0, done.stderr
    return done.stdout


def option_help(text: str, flag: str) -> str:
    """The help of one option, its wrapped lines joined."""
    lines = text.splitlines()
    start = next(
        i
        for i, line in enumerate(lines)
        if line.strip().startswith(flag + " ")
        or line.strip() == flag
        or line.strip().startswith(flag + ",")
    )
    out = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.startswith(" " * 6) or line.strip().startswith("--"):
            break
        out.append(line)
    return " ".join(" ".join(out).split())


def test_help_shows_the_defaults(help_text):
    assert "(default: 17342)" in option_help(help_text, "--grpc-port PORT")
    assert "(default: 17341)" in option_help(help_text, "--http-port PORT")
    assert "(default: 127.0.0.1)" in option_help(help_text, "--grpc-host HOST")
    assert "(default: 4)" in option_help(help_text, "--max-concurrent N")
    assert "(default: AWS_DEFAULT_REGION, else us-east-1)" in option_help(
        help_text, "--s3-region TEXT"
    )
    assert "(default: on)" in option_help(help_text, "--[no-]finish-early")


def test_help_names_every_subcommand_in_its_usage(help_text):
    usage = help_text.split("\n\n")[0]
    for command in (
        "codex-image-server service install",
        "codex-image-server keys add",
        "codex-image-server doctor",
    ):
        assert command in usage, usage
    assert "CODEX_IMAGE_SERVER_MAX_CONCURRENT" in help_text  # how flags map to variables
    # Short, not exhaustive: one or two lines a setting at 80 columns, and
    # the full text in docs/operating.md (it was 170 lines for 38 settings).
    lines = len(help_text.splitlines())
    assert lines < 3 * len(settings.OPTIONS), lines


def test_help_says_what_metrics_auth_does(help_text):
    """`always`: every caller needs a key, as the shim's /metrics route checks."""
    text = option_help(help_text, "--metrics-auth TEXT")
    assert "when /metrics needs an API key" in text
    assert "remote (only from other hosts; open on loopback)" in text
    assert "always (every caller)" in text and "never" in text
    source = (REPO / "server" / "codex_image_shim" / "app.py").read_text()
    assert (
        'if mode == "always" or (mode == "remote" and not _is_loopback(request.remote or "")):'
        in source
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_doctor_finds_nothing_to_fix_on_a_ready_machine(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "auth.json").write_text('{"fake": true}')
    done = server_command(
        "doctor",
        "--codex-bin",
        str(fake_codex_launcher(tmp_path)),
        "--grpc-port",
        str(free_port()),
        "--http-port",
        str(free_port()),
        "--output-dir",
        str(tmp_path / "out"),
        "--state-dir",
        str(tmp_path / "state"),
        env={"CODEX_HOME": str(home)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FIX" not in done.stdout and done.stdout.rstrip().endswith("nothing to fix"), done.stdout
    assert "ok   codex      codex-cli 0.169.0" in done.stdout
    assert not (tmp_path / "out").exists()  # it changes nothing


def test_doctor_names_each_fix(tmp_path):
    empty_home = tmp_path / "empty"
    empty_home.mkdir()
    launcher = fake_codex_launcher(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = server_command(
            "doctor",
            "--codex-bin",
            str(launcher),
            "--grpc-port",
            str(port),
            "--http-port",
            "0",
            "--state-dir",
            str(tmp_path / "state"),
            env={"CODEX_HOME": str(empty_home)},
        )
    assert done.returncode == 1
    out = done.stdout
    assert f"FIX  login      codex is not logged in (CODEX_HOME={empty_home})" in out
    assert f"run: CODEX_HOME={empty_home} {launcher} login" in out
    assert f"FIX  gRPC port  127.0.0.1:{port}: Address already in use" in out
    assert "pick a free port: --grpc-port N (or CODEX_IMAGE_SERVER_GRPC_PORT=N)" in out
    assert out.rstrip().endswith("2 to fix"), out

    missing = server_command(
        "doctor", "--codex-bin", str(tmp_path / "no-codex"), "--grpc-port", "0", "--http-port", "0"
    )
    assert missing.returncode == 1
    assert (
        "FIX  codex      codex CLI not found" in missing.stdout
        and "run: make codex" in missing.stdout
    )


def test_doctor_beside_a_running_server(tmp_path):
    """Its ports are taken by a codex-image-server: that is no problem."""
    with start_server(tmp_path, http=True) as srv:
        done = server_command(
            "doctor",
            "--grpc-port",
            str(srv.grpc_port),
            "--http-port",
            str(srv.http_port),
            env={
                k: v
                for k, v in srv.env.items()
                if k
                in (
                    "CODEX_HOME",
                    "CODEX_IMAGE_SERVER_CODEX_BIN",
                    "CODEX_IMAGE_SERVER_STATE_DIR",
                    "CODEX_IMAGE_SERVER_OUTPUT_DIR",
                )
            },
        )
    assert done.returncode == 0, done.stdout
    assert (
        f"ok   gRPC port  127.0.0.1:{srv.grpc_port}: a codex-image-server is serving there"
        in done.stdout
    )
    assert (
        f"ok   HTTP port  127.0.0.1:{srv.http_port}: a codex-image-server is serving there"
        in done.stdout
    )
