"""A request as it came: in a box its handler empties (Received), and for
Generate, its reference bytes taken out without a copy (split_references).

Parsed the plain way, a request with 80 MB of references is in memory three
times over (the wire bytes, the parsed message, the `bytes` each field read
gives). Here only the small rest of the request is parsed; each image stays a
view into the wire bytes until it is on disk. Anything this walk does not
expect (a field count no real client sends, a group, a truncated length) is
handed back to the plain parse, which gives the same answer or the same error
as before: this is a shortcut, never a second parser that decides."""

from __future__ import annotations

from codeximage.v1 import image_service_pb2 as pb

from codex_image_server.runtime import heap

_REFERENCES = pb.GenerateRequest.DESCRIPTOR.fields_by_name["references"].number
_IMAGE = pb.Reference.DESCRIPTOR.fields_by_name["image"].number
_LEN = 2  # wire type of bytes, strings and messages
# A real request has a dozen top-level fields and a reference six; a walk
# over more is left to the C parser, so hostile bytes never cost a long
# Python loop on the event loop.
_MAX_FIELDS = 256
_MAX_REFERENCE_FIELDS = 32


class Received:
    """A request's bytes as grpc.aio hands them over (the call's
    deserializer), in a box; the in-process shim boxes its message the same
    way. grpc.aio keeps whatever the deserializer returned until the call
    ends; the request is taken out to be parsed and the box stays behind
    empty, so a request carrying 80 MB of references is not kept a second
    time for the whole generation."""

    __slots__ = ("raw",)

    def __init__(self, raw):
        self.raw = raw

    @classmethod
    def off_the_wire(cls, raw: bytes) -> Received:
        """The gRPC server's deserializer: grpc.aio has just joined the
        message's slices into `raw` and freed them."""
        heap.body_assembled(len(raw))
        return cls(raw)

    def take(self):
        raw, self.raw = self.raw, b""
        return raw


class _Unusual(Exception):
    pass


def _varint(buf: memoryview, i: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= end or shift > 63:
            raise _Unusual()
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _fields(buf: memoryview, i: int, end: int, limit: int):
    """(number, wire type, start of the field, start of its value, end)."""
    for _ in range(limit):
        if i == end:
            return
        start = i
        key, i = _varint(buf, i, end)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            _, i = _varint(buf, i, end)
            yield number, wire_type, start, i, i
            continue
        if wire_type == _LEN:
            n, i = _varint(buf, i, end)
        elif wire_type in (1, 5):
            n = 8 if wire_type == 1 else 4
        else:
            raise _Unusual()  # groups: left to the parser
        if i + n > end:
            raise _Unusual()
        yield number, wire_type, start, i, i + n
        i += n
    raise _Unusual()


def split_references(raw: bytes) -> tuple[bytes, list[memoryview]] | None:
    """(the request without its reference images, each reference's image as
    a view into `raw`), or None for the plain parse."""
    buf = memoryview(raw)
    rest = bytearray()
    images: list[memoryview] = []
    try:
        for number, wire_type, start, value, end in _fields(buf, 0, len(buf), _MAX_FIELDS):
            if number != _REFERENCES or wire_type != _LEN:
                rest += buf[start:end]
                continue
            body = bytearray()
            image = buf[0:0]
            for n2, w2, s2, v2, e2 in _fields(buf, value, end, _MAX_REFERENCE_FIELDS):
                if n2 == _IMAGE and w2 == _LEN:
                    image = buf[v2:e2]  # a repeated field: the last one counts, as in the parser
                else:
                    body += buf[s2:e2]
            rest += _encode_varint(_REFERENCES << 3 | _LEN) + _encode_varint(len(body)) + body
            images.append(image)
    except _Unusual:
        return None
    return bytes(rest), images
