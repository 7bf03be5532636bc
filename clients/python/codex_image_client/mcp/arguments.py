"""A tool's arguments -> the API's request messages.

Only shapes are checked here (a field of the wrong JSON type, an argument
the tool does not have): every value is passed to the service as given, so
its validation and its field errors apply unchanged, as on the other
surfaces.
"""

from __future__ import annotations

from codeximage.v1 import image_service_pb2 as pb


class ArgumentError(Exception):
    """A tool argument the request cannot even be built from."""

    def __init__(self, field: str, description: str, fix: str = ""):
        super().__init__(f"{field}: {description}")
        self.field, self.description, self.fix = field, description, fix


def check_names(args: dict, schema: dict) -> None:
    known = schema.get("properties", {})
    for name in args:
        if name not in known:
            raise ArgumentError(
                name,
                "is not an argument of this tool",
                f"use only: {', '.join(known) or 'no arguments'}",
            )
    for name in schema.get("required", ()):
        if args.get(name) in (None, "", []):
            raise ArgumentError(name, "is required", f"pass `{name}`")


def text(args: dict, name: str) -> str:
    value = args.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ArgumentError(name, f"must be a string, not {type(value).__name__}")
    return value


def integer(args: dict, name: str) -> int | None:
    value = args.get(name)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentError(name, f"must be an integer, not {type(value).__name__}")
    return value


def strings(args: dict, name: str) -> list[str]:
    value = args.get(name)
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]  # one image given alone
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ArgumentError(
            name, "must be an array of strings (data URLs, image ids or file paths)"
        )
    return value


def generate_request(args: dict) -> pb.GenerateRequest:
    """The request without its references (references.resolve adds them)."""
    request = pb.GenerateRequest(
        prompt=text(args, "prompt"),
        count=integer(args, "count") or 0,
        size=text(args, "size"),
        aspect=text(args, "aspect"),
        quality=text(args, "quality"),
        output_format=text(args, "output_format"),
        background=text(args, "background"),
        fit=text(args, "fit"),
        request_id=text(args, "request_id"),
    )
    compression = integer(args, "output_compression")
    if compression is not None:
        request.output_compression = compression
    return request


def list_request(args: dict) -> pb.ListImagesRequest:
    return pb.ListImagesRequest(
        page_size=integer(args, "page_size") or 0,
        page_token=text(args, "page_token"),
        prompt_contains=text(args, "prompt_contains"),
        request_id=text(args, "request_id"),
    )
