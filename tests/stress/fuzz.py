"""Property-based fuzzing (hypothesis) of both surfaces: the /v1 JSON bodies,
headers and paths over raw HTTP, and every ImageService RPC's fields and raw
bytes over gRPC. The property: no 5xx, no traceback in any answer."""

from __future__ import annotations

import json
import socket

import grpc
from codeximage.v1 import image_service_pb2 as pb
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.support.grpc_helpers import png, png_claiming

from .figures import Figures

FIELDS = [
    "prompt",
    "n",
    "count",
    "size",
    "aspect",
    "ratio",
    "quality",
    "output_format",
    "request_id",
    "references",
    "reference_images_base64",
    "reference_image_base64",
    "model",
    "stream",
]
PATHS = [
    "/v1/images/generate",
    "/v1/capabilities",
    "/healthz",
    "/v1/images/x",
    "/v1/images/x/file",
    "/v1/openapi.json",
    "/",
    "/v1/images/%00",
    "/v1/images/" + "a" * 3000,
    "/v1/images/../../etc/passwd",
]
METHODS = ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "BREW"]
# Lone surrogates included: JSON can carry them as \\ud800 escapes.
ANY_TEXT = st.text(
    st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=40
)
SMALL_PNG = "data:image/png;base64," + __import__("base64").b64encode(png(16, 16)).decode()
BOMB_PNG = (
    "data:image/png;base64," + __import__("base64").b64encode(png_claiming(9000, 9000)).decode()
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    ANY_TEXT,
    st.sampled_from([SMALL_PNG, BOMB_PNG, "data:,", "x" * 5000]),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(FIELDS + ["image", "label", "mime_type"]) | ANY_TEXT, inner, max_size=4
        ),
    ),
    max_leaves=12,
)
BODIES = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=6).map(
        lambda d: json.dumps(d, ensure_ascii=True).encode()
    ),
    st.binary(max_size=200),
    st.integers(min_value=1, max_value=20000).map(
        lambda n: b'{"prompt":' + b"[" * n + b"]" * n + b"}"
    ),
)
HEADER_VALUES = st.one_of(
    ANY_TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")), st.binary(max_size=40)
)
HEADERS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                b"X-API-Key",
                b"Authorization",
                b"Content-Type",
                b"Accept",
                b"Content-Encoding",
                b"X-Request-Id",
                b"If-None-Match",
                b"Range",
            ]
        ),
        HEADER_VALUES,
    ),
    max_size=4,
)

# Who asks: allowed and refused Hosts (DNS rebinding, empty, port-only, none)
# and Origins (none, a UXP plugin, hostile, null, junk).
# Half of them allowed, so the bodies behind still get fuzzed.
HOSTS = st.one_of(
    st.just(b"127.0.0.1"),
    st.sampled_from(
        [b"localhost:1", b"[::1]", b"a.localhost", b"evil.example", b"", b":17341", None]
    )
    | HEADER_VALUES,
)
ORIGINS = st.one_of(
    st.none(),
    st.sampled_from(
        [
            b"uxp://com.example.plugin",
            b"http://evil.example",
            b"null",
            b"http://127.0.0.1",
            b"https://127.0.0.1:1",
        ]
    )
    | HEADER_VALUES,
)


def _http(port: int, raw: bytes) -> tuple[int | None, bytes]:
    # No half-close after the request: aiohttp takes the client's FIN for a
    # caller gone and drops the request unanswered (so did every request here
    # until that was seen). "Connection: close" ends the answer instead.
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            sock.sendall(raw)
        except (ConnectionResetError, BrokenPipeError):
            # A request refused before its body was read (aiohttp answers a
            # malformed one, e.g. method BREW, with 400 and closes at once):
            # the close resets a sender still sending, but the answer came
            # first and is there to read.
            pass
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            if not chunks:
                raise
    data = b"".join(chunks)
    try:
        return int(data.split(b" ", 2)[1]), data
    except (IndexError, ValueError):
        return None, data  # closed without an answer: not a 5xx, but counted


def fuzz_http(port: int, examples: int, figures: Figures, key: str = "") -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        method=st.sampled_from(METHODS),
        path=st.sampled_from(PATHS) | ANY_TEXT.map(lambda t: "/v1/" + t),
        body=BODIES,
        headers=HEADERS,
        keyed=st.booleans(),
        host=HOSTS,
        origin=ORIGINS,
    )
    def one(method, path, body, headers, keyed, host, origin):
        target = (
            path.encode("utf-8", "surrogatepass")
            .replace(b" ", b"%20")
            .replace(b"\r", b"")
            .replace(b"\n", b"")
        )
        lines = [
            method.encode() + b" " + target + b" HTTP/1.1",
            b"Connection: close",
            b"Content-Length: " + str(len(body)).encode(),
        ]
        lines += [
            name + b": " + value.replace(b"\r", b"").replace(b"\n", b"")
            for name, value in ((b"Host", host), (b"Origin", origin))
            if value is not None
        ]
        if keyed and key:
            lines.append(b"X-API-Key: " + key.encode())
        lines += [
            name + b": " + value.replace(b"\r", b"").replace(b"\n", b"") for name, value in headers
        ]
        status, answer = _http(port, b"\r\n".join(lines) + b"\r\n\r\n" + body)
        figures.answer(status, answer, f"{method} {path[:60]}")

    one()


GEN_FIELDS = dict(
    prompt=ANY_TEXT.map(lambda t: t.encode("utf-8", "surrogatepass").decode("utf-8", "replace"))
    | st.sampled_from(["x [[fake delay=0.05]]", "\x00", "a" * 40000]),
    count=st.integers(min_value=-(2**31), max_value=2**31 - 1),
    size=st.sampled_from(["", "auto", "1024x1024", "4K", "99999x1", "9" * 5000])
    | st.text(max_size=20),
    aspect=st.sampled_from(["", "16:9", "0:0", "1:99999"]) | st.text(max_size=20),
    quality=st.text(max_size=10),
    output_format=st.sampled_from(["png", "jpg", "gif", ""]) | st.text(max_size=10),
    request_id=st.text(max_size=70),
)
REFERENCES = st.lists(
    st.builds(
        pb.Reference,
        image=st.sampled_from(
            [png(16, 16), png(16, 16)[:-20], b"", b"junk", png_claiming(9000, 9000)]
        )
        | st.binary(max_size=64),
        mime_type=st.text(max_size=20),
        label=st.text(max_size=300),
    ),
    max_size=6,
)


def fuzz_grpc(target: str, examples: int, figures: Figures, key: str = "") -> None:
    channel = grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", 64 << 20)])
    md = (("x-api-key", key),) if key else ()
    unary = {
        m: channel.unary_unary(f"/codeximage.v1.ImageService/{m}")
        for m in ("GetCapabilities", "Health", "GetImage")
    }
    stream = {
        m: channel.unary_stream(f"/codeximage.v1.ImageService/{m}")
        for m in ("Generate", "GetImageFile")
    }

    def call(method: str, raw: bytes, keyed: bool) -> None:
        try:
            if method in unary:
                unary[method](raw, metadata=md if keyed else (), timeout=30)
            else:
                for _ in stream[method](raw, metadata=md if keyed else (), timeout=30):
                    pass
        except grpc.RpcError as err:
            figures.grpc_answer(err.code().name, err.details() or "", method)
            return
        figures.grpc_answer("OK", "", method)

    @settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(
        fields=st.fixed_dictionaries({}, optional=GEN_FIELDS),
        references=REFERENCES,
        keyed=st.booleans(),
    )
    def generate(fields, references, keyed):
        call(
            "Generate",
            pb.GenerateRequest(references=references, **fields).SerializeToString(),
            keyed,
        )

    @settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(
        image_id=st.text(max_size=300),
        method=st.sampled_from(["GetImage", "GetImageFile"]),
        keyed=st.booleans(),
    )
    def by_id(image_id, method, keyed):
        message = (
            pb.GetImageRequest(image_id=image_id)
            if method == "GetImage"
            else pb.GetImageFileRequest(image_id=image_id)
        )
        call(method, message.SerializeToString(), keyed)

    @settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(
        raw=st.binary(max_size=300), method=st.sampled_from([*unary, *stream]), keyed=st.booleans()
    )
    def raw_bytes(raw, method, keyed):
        call(method, raw, keyed)

    try:
        generate()
        by_id()
        raw_bytes()
    finally:
        channel.close()
