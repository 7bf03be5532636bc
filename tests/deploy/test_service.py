"""`codex-image-server service`: the units it writes, checked by the tools
that will read them (systemd-analyze verify for the systemd user unit;
plistlib, and the agent's own command run as launchd would, for the launchd
agent), the copies in deploy/, and install/status/uninstall on a HOME of
the test's own. No service manager runs here: `--no-start` where one would
be needed."""

from __future__ import annotations

import json
import os
import plistlib
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from codex_image_server.autostart import envfile, units
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support import procs
from tests.support.server_proc import REPO, fake_codex_launcher

SERVER = Path(sys.executable).with_name("codex-image-server")
DEPLOY = REPO / "deploy"


def service(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "XDG_CONFIG_HOME"}
    env["HOME"] = str(home)
    proc = subprocess.run(
        [str(SERVER), "service", *args],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def systemd_verify(unit: Path, home: Path) -> str:
    """systemd-analyze's complaints about the unit (empty: none). It needs a
    runtime directory for --user; warnings (unknown keys, bad values) do not
    change its exit code, so they count as failures here too."""
    tool = shutil.which("systemd-analyze")
    if not sys.platform.startswith("linux"):
        pytest.skip("systemd units are verified on Linux only")
    assert tool, (
        "systemd-analyze is missing: `make systemd-analyze` installs it (apt package systemd)"
    )
    runtime = home / "run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = dict(os.environ, HOME=str(home), XDG_RUNTIME_DIR=str(runtime))
    proc = subprocess.run(
        [tool, "--user", "verify", str(unit)],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    said = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    return "\n".join(said) if proc.returncode or said else ""


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path):
    home = tmp_path / "home"
    out = service(home, "--manager", "systemd", "install", "--no-start").stdout
    unit = home / ".config" / "systemd" / "user" / "codex-image-server.service"
    env_file = home / ".config" / "codex-image-server" / "env"
    assert f"wrote {unit}" in out and f"wrote {env_file}" in out
    text = unit.read_text()
    assert f"ExecStart={SERVER}\n" in text and f"EnvironmentFile=-{env_file}\n" in text
    for line in (
        "Restart=on-failure",
        "KillMode=mixed",
        "WantedBy=default.target",
        "StandardError=journal",
    ):
        assert line in text.splitlines()
    assert systemd_verify(unit, home) == ""
    # The check has teeth: a misspelt key is reported.
    unit.write_text(text.replace("Restart=on-failure", "Restrat=on-failure"))
    assert "Unknown key" in systemd_verify(unit, home)
    # The settings file: the install-time PATH, private, readable by both readers.
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    assert envfile.read(env_file)["PATH"] == os.environ["PATH"]


def test_deploy_copies_are_what_install_writes_and_verify(tmp_path):
    assert (DEPLOY / "systemd" / "codex-image-server.service").read_text() == units.systemd_unit(
        units.DEPLOY_SYSTEMD
    )
    assert (DEPLOY / "launchd" / "dev.codeximage.server.plist").read_bytes() == units.launchd_plist(
        units.DEPLOY_LAUNCHD
    )
    # As a pipx user has it: the command in ~/.local/bin (%h/.local/bin).
    home = tmp_path / "home"
    (home / ".local" / "bin").mkdir(parents=True)
    (home / ".local" / "bin" / "codex-image-server").symlink_to(SERVER)
    assert systemd_verify(DEPLOY / "systemd" / "codex-image-server.service", home) == ""


def test_launchd_agent_serves_with_the_settings_file_and_status_sees_it(tmp_path):
    home = tmp_path / "home"
    service(home, "--manager", "launchd", "install", "--no-start")
    plist = home / "Library" / "LaunchAgents" / "dev.codeximage.server.plist"
    agent = plistlib.loads(plist.read_bytes())
    env_file = home / ".config" / "codex-image-server" / "env"
    log = home / "Library" / "Logs" / "codex-image-server" / "server.log"
    assert agent["Label"] == "dev.codeximage.server" and agent["RunAtLoad"] is True
    assert agent["KeepAlive"] == {"SuccessfulExit": False} and agent["ThrottleInterval"] == 5
    assert agent["ProgramArguments"] == [str(SERVER), "service", "run", "--env-file", str(env_file)]
    assert agent["StandardErrorPath"] == str(log) and log.parent.is_dir()

    # Settings as a user would put them in the file.
    ready = tmp_path / "ready.json"
    codex_home = tmp_path / "codex-home"
    codex_home.mkdir()
    (codex_home / "auth.json").write_text('{"fake": true}')
    env_file.write_text(
        env_file.read_text()
        + "\n".join(
            [
                "",
                f"CODEX_HOME={codex_home}",
                f"CODEX_IMAGE_SERVER_CODEX_BIN={fake_codex_launcher(tmp_path)}",
                "CODEX_IMAGE_SERVER_GRPC_PORT=0",
                "CODEX_IMAGE_SERVER_HTTP_ENABLED=0",
                f'CODEX_IMAGE_SERVER_OUTPUT_DIR="{tmp_path / "images"}"',
                f"CODEX_IMAGE_SERVER_STATE_DIR={tmp_path / 'state'}",
                f"CODEX_IMAGE_SERVER_READY_FILE={ready}",
                "",
            ]
        )
    )
    # Run the agent's command the way launchd does: its arguments, a bare
    # environment, output into the log file.
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            agent["ProgramArguments"],
            env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            cwd="/",
        )
    try:
        assert procs.wait_until(lambda: ready.exists() or proc.poll() is not None, 30), (
            "server did not start"
        )
        assert proc.poll() is None, log.read_text()[-3000:]
        port = json.loads(ready.read_text())["grpc_port"]
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        # status finds it at the port the settings name.
        env_file.write_text(
            env_file.read_text().replace(
                "CODEX_IMAGE_SERVER_GRPC_PORT=0", f"CODEX_IMAGE_SERVER_GRPC_PORT={port}"
            )
        )
        status = service(home, "--manager", "launchd", "status", check=False)
        assert status.returncode == 0 and f"SERVING at 127.0.0.1:{port}" in status.stdout, (
            status.stdout
        )
        assert '"event": "server.started"' in log.read_text() or "server.started" in log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    assert code == 0  # a clean stop, which KeepAlive {SuccessfulExit: false} does not restart


def test_status_and_uninstall(tmp_path):
    home = tmp_path / "home"
    missing = service(home, "--manager", "systemd", "status", check=False)
    assert missing.returncode == 3 and "(not installed)" in missing.stdout
    service(home, "--manager", "systemd", "install", "--no-start")
    unit = home / ".config" / "systemd" / "user" / "codex-image-server.service"
    assert unit.exists()
    out = service(home, "--manager", "systemd", "uninstall").stdout
    assert not unit.exists() and f"removed {unit}" in out
    assert (home / ".config" / "codex-image-server" / "env").exists()  # settings stay


def test_install_without_a_user_manager_says_what_to_run(tmp_path):
    """Here (a container) there is no systemd user session: the files are
    still written and the message says how to start it later."""
    if shutil.which("systemctl") is None:
        pytest.skip("no systemctl on this machine")
    probe = subprocess.run(
        ["systemctl", "--user", "is-system-running"], capture_output=True, text=True, timeout=30
    )
    if probe.returncode == 0:
        pytest.skip("a systemd user session runs here; install would really start the service")
    home = tmp_path / "home"
    proc = service(home, "--manager", "systemd", "install", check=False)
    assert (
        proc.returncode == 1
        and "systemctl --user enable --now codex-image-server.service" in proc.stderr
    )
    assert (home / ".config" / "systemd" / "user" / "codex-image-server.service").exists()


def test_env_file_syntax(tmp_path):
    path = tmp_path / "env"
    path.write_text("# comment\n\nA=1\nexport B=\"two words\"\nC='x'\n  D = no\n")
    with pytest.raises(ValueError, match=":6: not NAME=value"):
        envfile.read(path)
    path.write_text("# comment\n\nA=1\nexport B=\"two words\"\nC='x'\nE=a=b\n")
    assert envfile.read(path) == {"A": "1", "B": "two words", "C": "x", "E": "a=b"}


def test_server_help_mentions_the_service_command():
    out = subprocess.run([str(SERVER), "--help"], capture_output=True, text=True, timeout=30).stdout
    assert "codex-image-server service install" in out


def test_manager_goes_before_or_after_the_action(tmp_path):
    """deploy/README.md writes `service install --manager launchd`."""
    assert "`--manager systemd|launchd`" in (DEPLOY / "README.md").read_text()
    after, before = tmp_path / "after", tmp_path / "before"
    service(after, "install", "--manager", "launchd", "--no-start")
    service(before, "--manager", "launchd", "install", "--no-start")
    for home in (after, before):
        assert (home / "Library" / "LaunchAgents" / "dev.codeximage.server.plist").is_file()
        assert not (home / ".config" / "systemd").exists()
    status = service(after, "status", "--manager", "launchd", check=False)
    assert "manager:  launchd (user)" in status.stdout
