"""`codex-image`: generate images, show capabilities and health from a shell.

    codex-image generate "a red fox" -n 4 --size 2K --aspect 16:9 --ref a.png -o out/
    codex-image generate "a red fox" --json | jq -c 'select(.saved)'
    codex-image capabilities
    codex-image health
    codex-image list --prompt fox --since 2026-11-01 -n 20
    codex-image rm img_0123... img_4567...
    codex-image requests --status failed
    codex-image request REQUEST_ID
    codex-image submit "a red fox" --request-id fox-1 [--wait -o out/]  # detached (operations.md)
    codex-image ops --running
    codex-image op fox-1 [--cancel | --delete]
    codex-image mcp                  # MCP over stdio, for an agent host (docs/mcp.md)

Exit status: 0 on success, 1 when the server refused or failed the call
(the message names the status, the reason and each bad field), 2 for bad
usage, 130 when interrupted (the call is cancelled, so the server stops its
codex runs). QUEUE_FULL and UNAVAILABLE answers are retried (see --retries).

Each subcommand is one `add_<name>` (its arguments) and one `cmd_<name>`
(what it does) registered in SUBCOMMANDS.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import itertools
import mimetypes
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from codeximage.v1 import image_service_pb2 as pb

from . import jsonout
from .client import DEFAULT_TARGET, Client, operation_metadata, operation_result
from .errors import ClientError
from .events import Event, ImageReady, Progress, Summary
from .progress import ProgressView
from .retry import RetryPolicy, not_running, not_running_hint
from .version import __version__

ENV_SERVER = "CODEX_IMAGE_ADDR"
ENV_API_KEY = "CODEX_IMAGE_API_KEY"
_EXT = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}


# -- generate --------------------------------------------------------------------


def _add_request_arguments(parser: argparse.ArgumentParser) -> None:
    """What to draw: generate's and submit's own arguments."""
    parser.add_argument("prompt", help="what to draw")
    parser.add_argument("-n", "--count", type=int, default=1, help="number of candidates, 1-4")
    parser.add_argument("--size", default="", help='"auto", "WxH" or a preset "1K", "2K", "4K"')
    parser.add_argument(
        "--aspect", default="", help='with a preset: "16:9", "landscape", "portrait", "square"'
    )
    parser.add_argument("--quality", default="", help='"auto", "high", "medium", "low"')
    parser.add_argument("--format", dest="output_format", default="", help='"png", "jpeg", "webp"')
    parser.add_argument(
        "--ref", action="append", default=[], metavar="FILE", help="reference image (repeatable)"
    )


def add_generate(parser: argparse.ArgumentParser) -> None:
    _add_request_arguments(parser)
    parser.add_argument("--request-id", default="", help="your id for this request")
    parser.add_argument(
        "-o", "--out", default=".", help="directory for the images (created if missing)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.add_argument(
        "--json",
        action="store_true",
        help="write one JSON object per event to stdout (progress, image, summary, saved, "
        "retry, error) instead of the progress display and paths",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=4,
        help="how often to retry after QUEUE_FULL or UNAVAILABLE, waiting what the server's "
        "RetryInfo asks (default 4; 0 never retries)",
    )


class _JsonEvents:
    """--json: one compact JSON object a line on stdout, flushed at once."""

    def __init__(self, out=sys.stdout):
        self._out = out

    def __call__(self, kind: str, data: dict) -> None:
        self._out.write(jsonout.dumps({kind: data}) + "\n")
        self._out.flush()

    def event(self, event: Event) -> None:
        if isinstance(event, Progress):
            self("progress", dataclasses.asdict(event))
        elif isinstance(event, ImageReady):
            self("image", jsonout.to_dict(event.image))
        elif isinstance(event, Summary):
            self("summary", jsonout.to_dict(event.summary))


def cmd_generate(client: Client, args) -> int:
    for ref in args.ref:
        if not Path(ref).is_file():
            print(f"codex-image: reference not found: {ref}", file=sys.stderr)
            return 2
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    emit = args.emit
    view = None if args.quiet or args.json else ProgressView(max(args.count, 1), sys.stderr)
    try:
        images = _generate_with_retries(client, args, view, emit)
    except BaseException:
        if view:
            view.close()
        raise
    if view:
        view.close(final=f"done: {len(images)} image{'s' if len(images) != 1 else ''}")
    for image in images:
        ext = _EXT.get(image.mime_type) or mimetypes.guess_extension(image.mime_type) or ".bin"
        path = client.download(image.id, out_dir / f"{image.request_id}-{image.index + 1}{ext}")
        if emit:
            emit("saved", {"image_id": image.id, "index": image.index, "path": str(path)})
        else:
            print(path)  # stdout carries only the saved paths, one a line, for scripts
    return 0


def _generate_with_retries(
    client: Client, args, view: ProgressView | None, emit: _JsonEvents | None
):
    policy = RetryPolicy(attempts=max(args.retries, 0) + 1)
    attempt = 1
    while True:
        images = []
        try:
            generation = client.generate(
                args.prompt,
                count=args.count,
                size=args.size,
                aspect=args.aspect,
                quality=args.quality,
                output_format=args.output_format,
                references=args.ref,
                request_id=args.request_id,
                timeout=args.timeout,
            )
            with generation:
                for event in generation:
                    if view:
                        view.update(event)
                    if emit:
                        emit.event(event)
                    if isinstance(event, ImageReady):
                        images.append(event.image)
            return images
        except ClientError as exc:
            # Once an image has arrived, trying again would make new ones: give up.
            delay = None if images else policy.delay(exc, attempt)
            if delay is None:
                raise
            attempt += 1
            _wait_to_retry(exc, delay, attempt, policy.attempts, view, emit)


def _wait_to_retry(
    exc: ClientError,
    delay: float,
    attempt: int,
    attempts: int,
    view: ProgressView | None,
    emit: _JsonEvents | None,
) -> None:
    why = "queue full" if exc.reason == "QUEUE_FULL" else f"server unavailable ({exc.reason})"
    if emit:
        emit(
            "retry",
            {
                "attempt": attempt,
                "attempts": attempts,
                "delay_s": delay,
                "code": exc.code.name,
                "reason": exc.reason,
                "message": exc.message,
            },
        )
    elif not view:
        print(
            f"codex-image: {why}; retrying in {delay:.0f}s (try {attempt} of {attempts})",
            file=sys.stderr,
        )
    deadline = time.monotonic() + delay
    while (left := deadline - time.monotonic()) > 0:
        if view:
            view.note(f"{why}; retrying in {left:.0f}s (try {attempt} of {attempts})")
        time.sleep(min(left, 0.5))
    if view:
        view.note("connecting")


# -- capabilities, health ----------------------------------------------------------


def add_capabilities(parser: argparse.ArgumentParser) -> None:
    pass


def cmd_capabilities(client: Client, args) -> int:
    print(jsonout.dumps(jsonout.to_dict(client.capabilities()), pretty=True))
    return 0


def add_health(parser: argparse.ArgumentParser) -> None:
    pass


def cmd_health(client: Client, args) -> int:
    health = client.health()
    print(jsonout.dumps(jsonout.to_dict(health), pretty=True))
    return 0 if health.ready else 1


# -- list, requests, request, rm -----------------------------------------------------


def _when(text: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO time: {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def add_list(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prompt", default="", help="only those whose prompt contains this text")
    parser.add_argument("--request-id", default="", help="only this request id")
    parser.add_argument("--key", default="", help="only those of this API key name")
    parser.add_argument(
        "--since", type=_when, default=None, help="ISO time (UTC unless it says otherwise)"
    )
    parser.add_argument("--until", type=_when, default=None, help="ISO time, exclusive")
    parser.add_argument("-n", "--limit", type=int, default=50, help="at most this many (0: all)")
    parser.add_argument("--json", action="store_true", help="one JSON object a line")


def add_requests(parser: argparse.ArgumentParser) -> None:
    add_list(parser)
    parser.add_argument(
        "--status", default="", help="running, completed, failed, cancelled or refused"
    )


def cmd_list(client: Client, args) -> int:
    filters = dict(
        request_id=args.request_id,
        key_name=args.key,
        prompt_contains=args.prompt,
        start_time=args.since,
        end_time=args.until,
        page_size=min(args.limit or 1000, 1000),
    )
    # RequestRecord or Image messages, by the command.
    items: Iterator[Any] = (
        client.iter_requests(status=args.status, **filters)
        if args.command == "requests"
        else client.iter_images(**filters)
    )
    item: Any
    for item in itertools.islice(items, args.limit or None):
        if args.json:
            print(jsonout.dumps(jsonout.to_dict(item)))
            continue
        when = item.create_time.ToDatetime(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        prompt = " ".join(item.prompt.split())
        prompt = prompt if len(prompt) <= 60 else prompt[:57] + "..."
        if args.command == "requests":
            outcome = item.status + (f" ({item.error_reason})" if item.error_reason else "")
            print(
                f"{item.request_id}\t{when}\t{outcome}\t{len(item.image_ids)} "
                f"images\t{item.key_name or '-'}"
                f"\t{prompt}"
            )
        else:
            print(
                f"{item.id}\t{when}\t{item.width}x{item.height}\t{item.byte_size}\t{item.request_id}\t{prompt}"
            )
    return 0


def add_request(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("request_id")


def cmd_request(client: Client, args) -> int:
    print(jsonout.dumps(jsonout.to_dict(client.get_request(args.request_id)), pretty=True))
    return 0


def add_rm(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image_ids", nargs="+", metavar="IMAGE_ID")


def cmd_rm(client: Client, args) -> int:
    failed = 0
    for image_id in args.image_ids:
        try:
            client.delete_image(image_id)
            print(image_id)
        except ClientError as exc:
            print(f"codex-image: rm {image_id}: {exc}", file=sys.stderr)
            failed = 1
    return failed


# -- detached generations ----------------------------------------------------------


def _state(op) -> str:
    return (
        pb.GenerationMetadata.State.Name(operation_metadata(op).state)
        .removeprefix("STATE_")
        .lower()
    )


def add_submit(parser: argparse.ArgumentParser) -> None:
    _add_request_arguments(parser)
    parser.add_argument(
        "--request-id",
        default="",
        help="your id (the operation is operations/ID); the same id again starts nothing",
    )
    parser.add_argument(
        "--webhook", default="", metavar="URL", help="where the server POSTs the outcome"
    )
    parser.add_argument(
        "--wait", action="store_true", help="wait until it is done and save the images"
    )
    parser.add_argument("-o", "--out", default=".", help="with --wait: directory for the images")


def cmd_submit(client: Client, args) -> int:
    op = client.submit(
        args.prompt,
        count=args.count,
        size=args.size,
        aspect=args.aspect,
        quality=args.quality,
        output_format=args.output_format,
        references=args.ref,
        request_id=args.request_id,
        webhook_url=args.webhook,
    )
    if not args.wait:
        print(op.name)  # stdout: the name, for scripts
        return 0
    print(f"{op.name}: waiting", file=sys.stderr)
    result = operation_result(client.wait(op.name))
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    for image in result.images:
        ext = _EXT.get(image.mime_type) or mimetypes.guess_extension(image.mime_type) or ".bin"
        print(client.download(image.id, out_dir / f"{image.request_id}-{image.index + 1}{ext}"))
    return 0


def add_ops(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--done", action="store_true", help="finished ones only")
    group.add_argument("--pending", action="store_true", help="queued and running ones only")
    group.add_argument(
        "--state", default="", help="queued, running, succeeded, failed or cancelled"
    )
    parser.add_argument("-n", "--limit", type=int, default=50, help="at most this many (0: all)")
    parser.add_argument("--json", action="store_true", help="one JSON object a line")


def cmd_ops(client: Client, args) -> int:
    filter_ = (
        "done = true"
        if args.done
        else "done = false"
        if args.pending
        else f"state = {args.state.upper()}"
        if args.state
        else ""
    )
    for op in itertools.islice(
        client.iter_operations(filter=filter_, page_size=min(args.limit or 1000, 1000)),
        args.limit or None,
    ):
        if args.json:
            print(jsonout.dumps(jsonout.to_dict(op)))
            continue
        meta = operation_metadata(op)
        when = meta.create_time.ToDatetime(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        print(f"{op.name}\t{when}\t{_state(op)}\tattempts {meta.attempts}\t{meta.key_name or '-'}")
    return 0


def add_op(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="operations/ID or the request id")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--cancel", action="store_true", help="stop it (every codex run of it)")
    group.add_argument(
        "--delete", action="store_true", help="forget a finished one (its images stay)"
    )
    group.add_argument("--wait", action="store_true", help="wait until it is done, then print it")


def cmd_op(client: Client, args) -> int:
    if args.cancel:
        client.cancel(args.name)
    if args.delete:
        client.delete_operation(args.name)
        return 0
    # A cancelled one is shown once it ended (its codex runs stopped).
    op = (
        client.wait(args.name, timeout=None if args.wait else 30)
        if args.wait or args.cancel
        else client.get_operation(args.name)
    )
    print(jsonout.dumps(jsonout.to_dict(op), pretty=True))
    return 0


# -- mcp ---------------------------------------------------------------------------


def add_mcp(parser: argparse.ArgumentParser) -> None:
    from .mcp.backend import DEFAULT_INLINE_MAX_BYTES  # noqa: PLC0415 - no SDK import: that waits for `mcp`

    parser.add_argument(
        "--inline-max-bytes",
        type=int,
        default=DEFAULT_INLINE_MAX_BYTES,
        help="images larger than this are returned as links only (default %(default)s)",
    )


def cmd_mcp(client: Client, args) -> int:
    try:
        from .mcp import stdio  # noqa: PLC0415 - the mcp extra may not be installed
    except ImportError:
        print(
            "codex-image: `mcp` needs the MCP SDK: pip install 'codex-image-client[mcp]'",
            file=sys.stderr,
        )
        return 2
    return stdio.run(args.server, args.api_key, args.inline_max_bytes)


# name -> (help, add its arguments, run it). New subcommands go here.
AddArguments = Callable[[argparse.ArgumentParser], None]
Run = Callable[[Client, argparse.Namespace], int]
SUBCOMMANDS: dict[str, tuple[str, AddArguments, Run]] = {
    "generate": ("generate image candidates and save them", add_generate, cmd_generate),
    "capabilities": ("print the server's capabilities as JSON", add_capabilities, cmd_capabilities),
    "health": ("print the server's health as JSON; exit 1 when not ready", add_health, cmd_health),
    "list": (
        "list stored images, newest first (id, time, size, request, prompt)",
        add_list,
        cmd_list,
    ),
    "requests": ("list the request history, newest first (any outcome)", add_requests, cmd_list),
    "request": (
        "print one request's record, images and key usage as JSON",
        add_request,
        cmd_request,
    ),
    "rm": ("delete stored images (bytes and record)", add_rm, cmd_rm),
    "submit": (
        "start a detached generation (a long-running operation); print its name",
        add_submit,
        cmd_submit,
    ),
    "ops": (
        "list detached generations, newest first (name, time, state, attempts, key)",
        add_ops,
        cmd_ops,
    ),
    "op": (
        "print one detached generation as JSON; --wait, --cancel or --delete it",
        add_op,
        cmd_op,
    ),
    "mcp": (
        "serve MCP on stdin/stdout for an agent host, calling the server over gRPC",
        add_mcp,
        cmd_mcp,
    ),
}


# -- the command -------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="codex-image", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--server",
        default=os.environ.get(ENV_SERVER, DEFAULT_TARGET),
        help=f"gRPC address host:port (default ${ENV_SERVER} or {DEFAULT_TARGET})",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get(ENV_API_KEY),
        help=f"API key, sent as `authorization: Bearer` (default ${ENV_API_KEY})",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="deadline in seconds for each call (default: none for generate, 30 otherwise)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_arguments, _) in SUBCOMMANDS.items():
        add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    unary_timeout = args.timeout if args.timeout is not None else 30.0
    run = SUBCOMMANDS[args.command][2]
    args.emit = _JsonEvents() if args.command == "generate" and args.json else None
    try:
        with Client(args.server, api_key=args.api_key, timeout=unary_timeout) as client:
            return run(client, args)
    except ClientError as exc:
        if args.emit:
            args.emit(
                "error",
                {
                    "code": exc.code.name,
                    "reason": exc.reason,
                    "message": exc.message,
                    "violations": [dataclasses.asdict(v) for v in exc.violations],
                },
            )
        if not_running(exc):
            print("codex-image: " + not_running_hint(args.server, exc, ENV_SERVER), file=sys.stderr)
        else:
            print(f"codex-image: {args.command} failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("codex-image: interrupted; the call was cancelled", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
