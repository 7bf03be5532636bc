"""Messages as JSON for people and scripts: the proto's own field names,
every field present, and 64-bit integers as numbers (protobuf's JSON mapping
writes them as strings, which `jq '.x > 5'` and most readers trip on)."""

from __future__ import annotations

import json

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

_INT64 = {
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED64,
}


def to_dict(message: Message) -> dict:
    data = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    _numbers(message.DESCRIPTOR, data)
    return data


def _numbers(descriptor, data: dict) -> None:
    for field in descriptor.fields:
        if field.name not in data:
            continue
        value = data[field.name]
        if field.type in _INT64:
            data[field.name] = [int(v) for v in value] if isinstance(value, list) else int(value)
        elif (
            field.message_type is not None
            and not field.message_type.GetOptions().map_entry
            and not field.message_type.full_name.startswith("google.protobuf.")
        ):
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict):
                    _numbers(field.message_type, item)


def dumps(data, *, pretty: bool = False) -> str:
    return json.dumps(
        data,
        indent=2 if pretty else None,
        ensure_ascii=False,
        separators=None if pretty else (",", ":"),
    )
