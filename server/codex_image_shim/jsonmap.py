"""Protobuf's JSON mapping as the shim uses it: the proto's own snake_case
field names, every field printed, and int64 as JSON numbers (the plugin
contract compares `max_pixels`, `generation_timeout_ms` as numbers)."""

from __future__ import annotations

from google.protobuf import json_format
from google.rpc import error_details_pb2  # noqa: F401 - registers the detail types Any may hold


def to_dict(message) -> dict:
    return json_format.MessageToDict(
        message,
        always_print_fields_with_no_presence=True,
        preserving_proto_field_name=True,
        unquote_int64_if_possible=True,
    )


def status_to_dict(status) -> dict:
    """google.rpc.Status as grpc-gateway prints it (details as typed Any)."""
    return json_format.MessageToDict(
        status, preserving_proto_field_name=True, unquote_int64_if_possible=True
    )


def parse(data: dict, message):
    """Fill `message` from JSON; unknown fields are ignored like grpc-gateway's
    default unmarshaler. Raises json_format.ParseError on wrong types."""
    return json_format.ParseDict(data, message, ignore_unknown_fields=True)
