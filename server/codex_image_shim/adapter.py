"""The one place the plugin contract and the proto's JSON differ.

Requests: `n` is `count`, `ratio` is `aspect`, `jpg` is `jpeg`,
`references[].image` is a data URL (or bare base64), and the
`reference_images_base64` / `reference_image_base64` family is accepted.
Everything else goes through protobuf's JSON mapping of GenerateRequest,
so the proto stays the one list of fields; unknown fields (`model`,
`return`, ...) are ignored. Pixel sizes (`canvas_size`, `references[].width`
/`height`) that are not whole numbers are refused naming the field.

Responses: the Generate stream is folded into the seed server's aggregated
document, each image with an absolute `url` on the caller's origin.
"""

from __future__ import annotations

import json
import re

from codex_image_client import dataurl
from codex_image_server.dataplane.convert import WithImages
from codeximage.v1 import image_service_pb2 as pb
from google.protobuf import json_format

from . import errors, jsonmap

# Our messages nest four levels at most; anything deeper is not a request.
MAX_JSON_DEPTH = 32
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def read_json(body: bytearray) -> dict:
    """parse_body for a body read into a bytearray: emptied once it is text
    (UTF-8, or UTF-16/32 as JSON allows), before the parse makes its strings,
    so a body of 100 MB of base64 is never in memory three times, whoever
    else still holds the bytearray. Blocking: run it off the event loop."""
    try:
        text = body.decode(json.detect_encoding(body), "surrogatepass")
    except UnicodeDecodeError:
        raise errors.invalid_json("the request body is not valid JSON") from None
    body.clear()
    return parse_body(text)


def parse_body(raw: bytes | bytearray | str):
    if not raw or raw.isspace():  # not strip(): that copies the whole body
        raise errors.invalid_json("the request body is empty; send a JSON object")
    try:
        data = json.loads(raw)
    except RecursionError:
        raise errors.invalid_json(
            f"the request body nests deeper than {MAX_JSON_DEPTH} levels"
        ) from None
    except (UnicodeDecodeError, ValueError) as exc:
        # The position only: the parser's message may quote the body.
        where = f" at byte {exc.pos}" if isinstance(exc, json.JSONDecodeError) else ""
        raise errors.invalid_json(f"the request body is not valid JSON{where}") from None
    if not isinstance(data, dict):
        raise errors.invalid_json("the request body must be a JSON object")
    check_tree(data)
    return data


def check_tree(data) -> None:
    """Bounded depth, and no lone surrogate anywhere (JSON can carry one as
    an escape; it is not Unicode, so no protobuf string can hold it). Walked
    without recursion, naming the field the way FieldViolation does."""
    stack = [(data, "", 1)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise errors.invalid_json(f"the request body nests deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(value, str):
            if _LONE_SURROGATE.search(value):
                raise errors.invalid_text(
                    path or "body", "contains a lone UTF-16 surrogate, which is not valid Unicode"
                )
        elif isinstance(value, dict):
            for key, item in value.items():
                if _LONE_SURROGATE.search(key):
                    raise errors.invalid_text(
                        path or "body", "has a field name that is not valid Unicode"
                    )
                stack.append((item, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))


def decode_image(value, where: str) -> tuple[bytes, str]:
    """A data URL or bare base64 -> (bytes, declared mime type)."""
    if not isinstance(value, str):
        raise errors.invalid_json(f"{where} must be a string (a data URL or base64)")
    try:
        return dataurl.decode(value, where)
    except dataurl.NotAnImage as exc:
        raise errors.invalid_reference(str(exc)) from None


_INT32_MAX = 2**31 - 1


def _check_pixels(obj: dict, where: str, reason: str) -> None:
    for key in ("width", "height"):
        value = obj.get(key)
        if value is None:
            continue
        whole = not isinstance(value, bool) and (
            isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        )
        if not whole or abs(value) > _INT32_MAX:
            raise errors.bad_field(
                f"{where}.{key}", f"{value!r} is not a whole number of pixels", reason
            )


def _canvas_size(data: dict) -> None:
    if data.get("canvas_size") is None:
        data.pop("canvas_size", None)
        return
    canvas = data["canvas_size"]
    if not isinstance(canvas, dict):
        raise errors.bad_field(
            "canvas_size",
            f'{canvas!r} is not an object {{"width": W, "height": H}}',
            "INVALID_CANVAS_SIZE",
        )
    _check_pixels(canvas, "canvas_size", "INVALID_CANVAS_SIZE")


def _reference(item, where: str) -> tuple[pb.Reference, bytes]:
    if isinstance(item, str):
        item = {"image": item}
    if not isinstance(item, dict):
        raise errors.invalid_json(f"{where} must be an object with an `image` data URL")
    if "image" not in item:
        raise errors.invalid_reference(f"{where}.image is missing")
    _check_pixels(item, where, "INVALID_REFERENCE")
    image, mime = decode_image(item["image"], f"{where}.image")
    reference = pb.Reference()
    rest = {k: v for k, v in item.items() if k != "image"}
    try:
        jsonmap.parse(rest, reference)
    except json_format.ParseError as exc:
        raise errors.wrong_type(where, exc) from None
    if not reference.mime_type:
        reference.mime_type = mime
    return reference, image


def _list(value, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise errors.invalid_json(f"`{where}` must be an array")
    return value


def generate_request(data: dict) -> WithImages:
    """The plugin's JSON -> GenerateRequest, its reference images beside it
    (as the gRPC port takes them off the wire: no copy into the message).
    Each base64 string is dropped from `data` once decoded. Raises ShimError
    (400) on bad input."""
    data = dict(data)
    if "count" not in data and "n" in data:
        data["count"] = data.pop("n")
    if "aspect" not in data and "ratio" in data:
        data["aspect"] = data.pop("ratio")
    if (
        isinstance(data.get("output_format"), str)
        and data["output_format"].strip().lower() == "jpg"
    ):
        data["output_format"] = "jpeg"
    for key in ("count",):
        if isinstance(data.get(key), bool):
            raise errors.invalid_json(f"`{key}` must be an integer")
    _canvas_size(data)
    references = _list(data.pop("references", None), "references")
    extra = _list(data.pop("reference_images_base64", None), "reference_images_base64")
    single = data.pop("reference_image_base64", None)
    request = pb.GenerateRequest()
    try:
        jsonmap.parse(data, request)
    except json_format.ParseError as exc:
        raise errors.wrong_type("wrong type in the request", exc) from None
    images = []

    def add(items: list, name: str) -> None:
        for i, item in enumerate(items):
            reference, image = _reference(item, f"{name}[{i}]")
            items[i] = None  # its base64 goes now, not with the whole body
            request.references.append(reference)
            images.append(image)

    add(references, "references")
    add(extra, "reference_images_base64")
    if single not in (None, ""):
        reference, image = _reference(single, "reference_image_base64")
        request.references.append(reference)
        images.append(image)
    return WithImages(request, images)


def image_entry(image: dict, origin: str) -> dict:
    """One `data[]` item: the Image's own JSON plus the absolute file `url`.
    Its `resolved_size` is the image's real size, as everywhere."""
    entry = dict(image)
    entry["url"] = origin + image["file_path"]
    if not entry.get("revised_prompt"):
        entry.pop("revised_prompt", None)
    return entry


def aggregate(summary: dict, images: list[dict], origin: str) -> dict:
    """The seed server's answer: summary fields, `id`, and `data` in candidate order."""
    body = {"id": summary["request_id"]}
    body.update({k: v for k, v in summary.items() if k != "image_ids"})
    body["data"] = [
        image_entry(img, origin) for img in sorted(images, key=lambda i: i.get("index", 0))
    ]
    return body


# What /healthz tells a caller without a key when keys are set: whether to
# send traffic, and the fixed facts the plugin contract reads there before it
# has a key (that one is needed, the backend, the model, the time limit);
# nothing of paths, versions, accounts or slots.
PUBLIC_HEALTH_FIELDS = (
    "status",
    "ready",
    "auth_required",
    "backend",
    "model",
    "generation_timeout_ms",
)


def health(response: dict, detailed: bool = True) -> tuple[int, dict]:
    """`/healthz`: HealthResponse as is (or its public fields alone); 503
    while codex cannot generate."""
    status = 200 if response.get("status") == "ok" else 503
    if not detailed:
        response = {name: response[name] for name in PUBLIC_HEALTH_FIELDS if name in response}
    return status, response
