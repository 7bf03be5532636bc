"""`codex-image`: generate images, show capabilities and health from a shell.

    codex-image generate "a red fox" -n 4 --size 2K --aspect 16:9 --ref a.png -o out/
    codex-image capabilities
    codex-image health
    codex-image list --prompt fox --since 2026-11-01 -n 20
    codex-image rm img_0123... img_4567...
    codex-image requests --status failed
    codex-image request REQUEST_ID

Exit status: 0 on success, 1 when the server refused or failed the call
(the message names the status, the reason and each bad field), 130 when
interrupted (the call is cancelled, so the server stops its codex runs).
"""
from __future__ import annotations

import argparse
import datetime as dt
import itertools
import mimetypes
import os
import sys
from pathlib import Path

from google.protobuf import json_format

from .client import DEFAULT_TARGET, Client
from .errors import ClientError
from .progress import Bars

ENV_SERVER = "CODEX_IMAGE_ADDR"
ENV_API_KEY = "CODEX_IMAGE_API_KEY"
_EXT = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="codex-image", description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=os.environ.get(ENV_SERVER, DEFAULT_TARGET),
                        help=f"gRPC address host:port (default ${ENV_SERVER} or {DEFAULT_TARGET})")
    parser.add_argument("--api-key", default=os.environ.get(ENV_API_KEY),
                        help=f"API key, sent as `authorization: Bearer` (default ${ENV_API_KEY})")
    parser.add_argument("--timeout", type=float, default=None,
                        help="deadline in seconds for the whole call (default: none for generate, 30 otherwise)")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="generate image candidates and save them")
    gen.add_argument("prompt", help="what to draw")
    gen.add_argument("-n", "--count", type=int, default=1, help="number of candidates, 1-4")
    gen.add_argument("--size", default="", help='"auto", "WxH" or a preset "1K", "2K", "4K"')
    gen.add_argument("--aspect", default="", help='with a preset: "16:9", "landscape", "portrait", "square"')
    gen.add_argument("--quality", default="", help='"auto", "high", "medium", "low"')
    gen.add_argument("--format", dest="output_format", default="", help='"png", "jpeg", "webp"')
    gen.add_argument("--ref", action="append", default=[], metavar="FILE", help="reference image (repeatable)")
    gen.add_argument("--request-id", default="", help="your id for this request")
    gen.add_argument("-o", "--out", default=".", help="directory for the images (created if missing)")
    gen.add_argument("--quiet", action="store_true", help="no progress bars")
    ls = sub.add_parser("list", help="list stored images, newest first (id, time, size, request, prompt)")
    reqs = sub.add_parser("requests", help="list the request history, newest first (any outcome)")
    for p in (ls, reqs):
        p.add_argument("--prompt", default="", help="only those whose prompt contains this text")
        p.add_argument("--request-id", default="", help="only this request id")
        p.add_argument("--key", default="", help="only those of this API key name")
        p.add_argument("--since", type=_when, default=None, help="ISO time (UTC unless it says otherwise)")
        p.add_argument("--until", type=_when, default=None, help="ISO time, exclusive")
        p.add_argument("-n", "--limit", type=int, default=50, help="at most this many (0: all)")
        p.add_argument("--json", action="store_true", help="one JSON object a line")
    reqs.add_argument("--status", default="", help="running, completed, failed, cancelled or refused")
    req = sub.add_parser("request", help="print one request's record, images and key usage as JSON")
    req.add_argument("request_id")
    rm = sub.add_parser("rm", help="delete stored images (bytes and record)")
    rm.add_argument("image_ids", nargs="+", metavar="IMAGE_ID")
    sub.add_parser("capabilities", help="print the server's capabilities as JSON")
    sub.add_parser("health", help="print the server's health as JSON; exit 1 when not ready")
    return parser


def _when(text: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO time: {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def _one_line(message) -> str:
    return json_format.MessageToJson(message, preserving_proto_field_name=True, indent=None)


def _list(client: Client, args) -> int:
    filters = dict(request_id=args.request_id, key_name=args.key, prompt_contains=args.prompt,
                   start_time=args.since, end_time=args.until, page_size=min(args.limit or 1000, 1000))
    if args.command == "requests":
        items = client.iter_requests(status=args.status, **filters)
    else:
        items = client.iter_images(**filters)
    for item in itertools.islice(items, args.limit or None):
        if args.json:
            print(_one_line(item))
            continue
        when = item.create_time.ToDatetime(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        prompt = " ".join(item.prompt.split())
        prompt = prompt if len(prompt) <= 60 else prompt[:57] + "..."
        if args.command == "requests":
            outcome = item.status + (f" ({item.error_reason})" if item.error_reason else "")
            print(f"{item.request_id}\t{when}\t{outcome}\t{len(item.image_ids)} images\t{item.key_name or '-'}"
                  f"\t{prompt}")
        else:
            print(f"{item.id}\t{when}\t{item.width}x{item.height}\t{item.byte_size}\t{item.request_id}\t{prompt}")
    return 0


def _rm(client: Client, args) -> int:
    failed = 0
    for image_id in args.image_ids:
        try:
            client.delete_image(image_id)
            print(image_id)
        except ClientError as exc:
            print(f"codex-image: rm {image_id}: {exc}", file=sys.stderr)
            failed = 1
    return failed


def _print_json(message) -> None:
    print(json_format.MessageToJson(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True))


def _generate(client: Client, args) -> int:
    for ref in args.ref:
        if not Path(ref).is_file():
            print(f"codex-image: reference not found: {ref}", file=sys.stderr)
            return 2
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    bars = None if args.quiet else Bars(max(args.count, 1), sys.stderr)
    generation = client.generate(args.prompt, count=args.count, size=args.size, aspect=args.aspect,
                                 quality=args.quality, output_format=args.output_format,
                                 references=args.ref, request_id=args.request_id, timeout=args.timeout)
    with generation:
        result = generation.wait(on_event=bars.update if bars else None)
    for image in result.images:
        ext = _EXT.get(image.mime_type) or mimetypes.guess_extension(image.mime_type) or ".bin"
        path = client.download(image.id, out_dir / f"{image.request_id}-{image.index + 1}{ext}")
        print(path)  # stdout carries only the saved paths, one a line, for scripts
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    unary_timeout = args.timeout if args.timeout is not None else 30.0
    try:
        with Client(args.server, api_key=args.api_key, timeout=unary_timeout) as client:
            if args.command == "generate":
                return _generate(client, args)
            if args.command in ("list", "requests"):
                return _list(client, args)
            if args.command == "rm":
                return _rm(client, args)
            if args.command == "request":
                _print_json(client.get_request(args.request_id))
                return 0
            if args.command == "capabilities":
                _print_json(client.capabilities())
                return 0
            health = client.health()
            _print_json(health)
            return 0 if health.ready else 1
    except ClientError as exc:
        print(f"codex-image: {args.command} failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("codex-image: interrupted; the call was cancelled", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
