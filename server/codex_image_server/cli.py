"""`codex-image-server [service|keys|doctor] ...`: the command line. With no
subcommand it runs the server (serve.py, the composition root); each
subcommand imports only what it needs."""

from __future__ import annotations

import argparse
import sys

from codex_image_server import settings as settings_mod
from codex_image_server.team import keys as keys_mod


def _keys_command(argv: list[str]) -> int:
    """`keys add NAME [--role member|admin] [--max-concurrent N] [--images-per-day N]`: prints the
    new key once."""
    parser = argparse.ArgumentParser(prog="codex-image-server keys")
    sub = parser.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="make a named key and record its hash in the keys file")
    add.add_argument("name")
    add.add_argument(
        "--role",
        choices=keys_mod.ROLES,
        default=keys_mod.MEMBER,
        help="member: sees only its own images and requests (default); admin: sees all",
    )
    add.add_argument("--max-concurrent", type=int, default=0, help="requests at once (0: no limit)")
    add.add_argument(
        "--images-per-day", type=int, default=0, help="images per UTC day (0: no limit)"
    )
    add.add_argument(
        "--keys-file",
        type=str,
        default=None,
        help="default: CODEX_IMAGE_SERVER_KEYS_FILE or <state_dir>/keys.json",
    )
    args, rest = parser.parse_known_args(argv)
    settings = settings_mod.load(rest + (["--keys-file", args.keys_file] if args.keys_file else []))
    try:
        key = keys_mod.add_to_file(
            settings.keys_path, args.name, args.max_concurrent, args.images_per_day, args.role
        )
    except keys_mod.KeyFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(key)
    print(
        f"key {args.name!r} ({args.role}) added to {settings.keys_path}; it is shown only now. "
        "Send SIGHUP to a running server to load it.",
        file=sys.stderr,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["service"]:  # install|uninstall|status|run as a login service
        from codex_image_server.autostart.commands import main as service_main  # noqa: PLC0415 - only for that command

        return service_main(argv[1:])
    if argv[:1] == ["keys"]:
        return _keys_command(argv[1:])
    if argv[:1] == ["doctor"]:  # checks what the server needs, prints fixes
        from codex_image_server.doctor import main as doctor_main  # noqa: PLC0415 - only for that command

        return doctor_main(argv[1:])
    from codex_image_server.serve import run  # noqa: PLC0415 - grpc is imported only to serve

    return run(argv)
