"""What a person sees when the server starts on a terminal: a real server
process with its stdout and stderr on a pseudo-terminal. Services and pipes
keep getting JSON lines only."""

from __future__ import annotations

import os
import pty
import threading
import time

from codeximage.v1 import image_service_pb2 as pb

from tests.support.server_proc import start_server


class Terminal:
    """The far end of a pty, read all the time (a full pty would block the server)."""

    def __init__(self):
        self.master, self.slave = pty.openpty()
        self._data = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: every writer has gone
                return
            if not chunk:
                return
            self._data += chunk

    def text(self) -> str:
        return self._data.decode("utf-8", "replace").replace("\r\n", "\n")

    def wait_for(self, needle: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            assert time.monotonic() < deadline, f"no {needle!r} on the terminal:\n{self.text()}"
            time.sleep(0.02)
        return self.text()

    def close(self) -> None:
        os.close(self.slave)
        self._reader.join(10)
        os.close(self.master)


def test_a_terminal_sees_both_addresses_and_the_console_url(tmp_path):
    term = Terminal()
    try:
        with start_server(tmp_path, http=True, terminal=term.slave) as srv:
            text = term.wait_for("Ctrl-C stops it")
            assert f"\n  gRPC     127.0.0.1:{srv.grpc_port}\n" in text
            assert f"\n  HTTP     http://127.0.0.1:{srv.http_port}/v1 " in text
            assert f"\n  console  http://127.0.0.1:{srv.http_port}/\n" in text
            assert "\n  codex    ready (codex-cli 0.169.0)\n" in text
            assert '"event":"server.started"' in text  # the JSON lines stay
    finally:
        term.close()


def test_not_ready_names_the_one_command_that_fixes_it(tmp_path):
    term = Terminal()
    try:
        with start_server(tmp_path, http=True, logged_in=False, terminal=term.slave) as srv:
            text = term.wait_for("Ctrl-C stops it")
            fix = f"CODEX_HOME={srv.codex_home} {srv.env['CODEX_IMAGE_SERVER_CODEX_BIN']} login"
            assert "\n  codex    NOT READY: codex is not logged in\n" in text
            assert f"\n  fix      {fix}   (no restart needed)\n" in text
            # The same command where a program reads it.
            assert f"Run `{fix}`" in srv.stub().Health(pb.HealthRequest(), timeout=10).problem
    finally:
        term.close()


def test_no_banner_in_a_pipe_unless_asked(tmp_path):
    with start_server(tmp_path / "a", http=True) as srv:
        pass
    assert "is serving" not in srv.log_text()
    assert all(line.startswith("{") for line in srv.log_text().splitlines()), srv.log_text()
    with start_server(tmp_path / "b", http=True, args=["--banner"]) as srv:
        assert f"  console  http://127.0.0.1:{srv.http_port}/" in srv.log_text()


def test_no_banner_on_a_terminal_when_told(tmp_path):
    term = Terminal()
    try:
        with start_server(tmp_path, terminal=term.slave, args=["--no-banner"]):
            text = term.wait_for('"event":"server.started"')
        assert "is serving" not in text
    finally:
        term.close()
