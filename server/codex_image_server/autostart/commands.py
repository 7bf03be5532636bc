"""`codex-image-server service install|uninstall|status|run`.

install    write the unit (systemd user unit on Linux, launchd agent on macOS)
           and, if missing, the environment file; enable and (re)start it
uninstall  stop and disable it, remove the unit (the environment file and
           the logs stay)
status     where everything is, what the service manager says, and whether
           the server answers a health check
run        read the environment file, then serve (what the launchd agent runs)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from codex_image_server.autostart import envfile, units

EXIT_NOT_RUNNING = 3  # as in LSB `status`: installed or not, nothing answers


def default_manager() -> str:
    if sys.platform == "darwin":
        return "launchd"
    if sys.platform.startswith("linux"):
        return "systemd"
    raise SystemExit("codex-image-server runs on Linux and macOS; on Windows, run it inside WSL 2.")


def server_command() -> tuple[str, ...]:
    """How this very server was started, so the service runs the same one.
    The script's own path, not where a link points: a pipx upgrade replaces
    the target and the service keeps working."""
    script = Path(sys.argv[0])
    if script.name == units.NAME and script.exists():
        return (os.path.abspath(script),)
    return (sys.executable, "-m", "codex_image_server")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codex-image-server service",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawTextHelpFormatter,
    )
    manager_help = "write this kind of unit (default: systemd on Linux, launchd on macOS)"
    parser.add_argument(
        "--manager", choices=["systemd", "launchd"], default=None, help=manager_help
    )
    # Also after the action (`service install --manager launchd`), as people write it;
    # SUPPRESS keeps a value given before the action.
    manager = argparse.ArgumentParser(add_help=False)
    manager.add_argument(
        "--manager", choices=["systemd", "launchd"], default=argparse.SUPPRESS, help=manager_help
    )
    sub = parser.add_subparsers(dest="action", required=True)
    install = sub.add_parser(
        "install", parents=[manager], help="write, enable and start the service"
    )
    install.add_argument("--no-start", action="store_true", help="only write the files")
    sub.add_parser("uninstall", parents=[manager], help="stop, disable and remove the service")
    sub.add_parser(
        "status",
        parents=[manager],
        help="show the service's files and state; exit 3 when the server does not answer",
    )
    run = sub.add_parser(
        "run", help="read an environment file, then serve (used by the launchd agent)"
    )
    run.add_argument("--env-file", required=True, type=Path)
    run.add_argument("server_args", nargs=argparse.REMAINDER, help="flags for the server")
    return parser


class Service:
    """One user's service with one service manager."""

    def __init__(self, manager: str, home: Path | None = None, environ=os.environ):
        self.manager = manager
        self.home = home or Path.home()
        config_home = Path(environ["XDG_CONFIG_HOME"]) if environ.get("XDG_CONFIG_HOME") else None
        self.unit = units.unit_path(self.home, manager=manager, config_home=config_home)
        self.layout = units.layout_for(
            self.home, server_command(), manager=manager, config_home=config_home
        )

    # -- the service manager's commands -------------------------------------------

    def _control(self, action: str) -> list[list[str]]:
        if self.manager == "systemd":
            ctl = ["systemctl", "--user"]
            return {
                "start": [
                    [*ctl, "daemon-reload"],
                    [*ctl, "enable", units.SYSTEMD_UNIT],
                    [*ctl, "restart", units.SYSTEMD_UNIT],
                ],
                "stop": [[*ctl, "disable", "--now", units.SYSTEMD_UNIT]],
                "forget": [[*ctl, "daemon-reload"]],
                "state": [[*ctl, "is-active", units.SYSTEMD_UNIT]],
            }[action]
        domain = f"gui/{os.getuid()}"
        return {
            "start": [
                ["launchctl", "bootout", f"{domain}/{units.LAUNCHD_LABEL}"],
                ["launchctl", "bootstrap", domain, str(self.unit)],
            ],
            "stop": [["launchctl", "bootout", f"{domain}/{units.LAUNCHD_LABEL}"]],
            "forget": [],
            "state": [["launchctl", "print", f"{domain}/{units.LAUNCHD_LABEL}"]],
        }[action]

    @staticmethod
    def _run(cmd: list[str]) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(
                cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return subprocess.CompletedProcess(cmd, 127, "", str(exc))

    @property
    def logs(self) -> str:
        return (
            f"journalctl --user -u {units.NAME}"
            if self.manager == "systemd"
            else self.layout.log_file
        )

    # -- actions -------------------------------------------------------------------

    def install(self, start: bool) -> int:
        self.unit.parent.mkdir(parents=True, exist_ok=True)
        if self.manager == "systemd":
            self.unit.write_text(units.systemd_unit(self.layout))
        else:
            Path(self.layout.log_file).parent.mkdir(parents=True, exist_ok=True)
            self.unit.write_bytes(units.launchd_plist(self.layout))
        print(f"wrote {self.unit}")
        env_path = Path(self.layout.env_file)
        print(f"{'wrote' if envfile.ensure(env_path) else 'kept'} {env_path} (settings)")
        if not start:
            return 0
        for i, cmd in enumerate(self._control("start")):
            done = self._run(cmd)
            # launchd: the first bootout fails when the agent was not loaded yet.
            if done.returncode and not (self.manager == "launchd" and i == 0):
                print(
                    f"codex-image-server service: `{' '.join(cmd)}` failed: "
                    f"{(done.stderr or done.stdout).strip()}\n"
                    f"  The files are written; start it once the {self.manager} user session "
                    "runs:\n"
                    f"  {self._start_hint()}",
                    file=sys.stderr,
                )
                return 1
        print(f"started; logs: {self.logs}")
        return 0

    def _start_hint(self) -> str:
        if self.manager == "systemd":
            return f"systemctl --user enable --now {units.SYSTEMD_UNIT}"
        return f"launchctl bootstrap gui/{os.getuid()} {self.unit}"

    def uninstall(self) -> int:
        if self.unit.exists():
            for cmd in self._control("stop"):
                self._run(cmd)  # not loaded, or no session: nothing to stop
            self.unit.unlink()
            for cmd in self._control("forget"):
                self._run(cmd)
            print(f"removed {self.unit}")
        else:
            print(f"not installed ({self.unit} does not exist)")
        print(f"kept {self.layout.env_file} and the logs ({self.logs})")
        return 0

    def status(self) -> int:
        installed = self.unit.exists()
        print(f"manager:  {self.manager} (user)")
        print(f"unit:     {self.unit} ({'installed' if installed else 'not installed'})")
        print(
            "settings: "
            f"{self.layout.env_file}{'' if Path(self.layout.env_file).exists() else ' (none)'}"
        )
        print(f"logs:     {self.logs}")
        if installed:
            state = self._run(self._control("state")[0])
            said = (state.stdout or state.stderr).strip().splitlines()
            print(f"state:    {said[0] if said else 'unknown'}")
        target, answer = self._probe()
        print(f"server:   {answer} at {target}")
        return 0 if answer == "SERVING" else EXIT_NOT_RUNNING

    def _probe(self) -> tuple[str, str]:
        """grpc.health.v1 at the address the service's settings name."""
        import grpc  # noqa: PLC0415 - only status needs it
        from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: PLC0415 - as grpc

        env = {}
        if Path(self.layout.env_file).exists():
            env = envfile.read(Path(self.layout.env_file))
        host = env.get("CODEX_IMAGE_SERVER_GRPC_HOST", "127.0.0.1")
        host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        target = f"{host}:{env.get('CODEX_IMAGE_SERVER_GRPC_PORT', '17342')}"
        with grpc.insecure_channel(target) as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=3
                )
            except grpc.RpcError as exc:
                return target, f"not answering ({exc.code().name})"
        return target, health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def run_with_env_file(env_file: Path, server_args: list[str]) -> int:
    if env_file.exists():
        os.environ.update(envfile.read(env_file))
    from codex_image_server.serve import run  # noqa: PLC0415 - the server, only when asked to run it

    return run([a for a in server_args if a != "--"])


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.action == "run":
        return run_with_env_file(args.env_file, args.server_args)
    service = Service(args.manager or default_manager())
    if args.action == "install":
        return service.install(start=not args.no_start)
    if args.action == "uninstall":
        return service.uninstall()
    return service.status()
