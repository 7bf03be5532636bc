"""The Photoshop plugin's requests, shaped exactly as it sends them, and the
sizes it expects (../shared/http-contract.md, "What the real plugin sends and
expects"). Shared by the pairwise matrix in `make test` and the full cross
product in `make stress`.

The table below is copied from the contract; it is the check, so the service's
rule is never used to compute an expected size.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import itertools

import pytest
from codeximage.v1 import image_service_pb2 as pb
from PIL import Image

from tests.shim.client import request

# aspect -> (1k, 2k, 4k), as the plugin computes them.
PLUGIN_TABLE = {
    "1:1": ("1024x1024", "2048x2048", "2880x2880"),
    "16:9": ("1104x624", "2048x1152", "3840x2160"),
    "9:16": ("608x1088", "1152x2048", "2160x3840"),
    "3:2": ("1008x672", "2016x1344", "3504x2336"),
    "2:3": ("672x1008", "1344x2016", "2336x3504"),
    "4:3": ("1024x768", "2048x1536", "3264x2448"),
    "3:4": ("768x1024", "1536x2048", "2448x3264"),
    "5:4": ("960x768", "2000x1600", "3200x2560"),
    "4:5": ("768x960", "1600x2000", "2560x3200"),
    "21:9": ("1264x544", "2016x864", "3808x1632"),
    "canvas 2480x3508": ("720x1024", "1440x2048", "2416x3424"),
}
PRESETS = ("1k", "2k", "4k")
CANVAS = {"width": 2480, "height": 3508}
# The first reference is a 3:2 layer (a small copy of a 3000x2000 one).
FIRST_REFERENCE_RATIO = "3:2"
REFERENCE_ASPECTS = ("参考图比例", "原图比例", "自动", "reference")
CANVAS_ASPECTS = ("画布比例", "canvas")
CUSTOM_ASPECTS = ("自定义", "custom")
NAMED = {"landscape": "16:9", "portrait": "9:16", "square": "1:1"}
ASPECTS = (
    tuple(k for k in PLUGIN_TABLE if ":" in k)
    + tuple(NAMED)
    + REFERENCE_ASPECTS
    + CANVAS_ASPECTS
    + CUSTOM_ASPECTS
)
REFERENCE_COUNTS = (0, 1, 5, 16)
COUNTS = (1, 2, 3, 4)
AXES = (ASPECTS, PRESETS, REFERENCE_COUNTS, COUNTS)


def _png(width: int, height: int, rgb) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), rgb).save(out, format="PNG")
    return out.getvalue()


# (bytes, declared width, declared height): small bytes, the plugin's layer sizes.
REFERENCES = [(_png(60, 40, (200, 30, 30)), 3000, 2000)] + [
    (
        _png(32 + 8 * (i % 4), 32 + 8 * (i % 3), (20 * i % 256, 90, 160)),
        32 + 8 * (i % 4),
        32 + 8 * (i % 3),
    )
    for i in range(1, 16)
]


@dataclasses.dataclass(frozen=True)
class Row:
    aspect: str
    preset: str
    references: int
    count: int

    @property
    def expected(self) -> str:
        """The plugin's size for this row, from the table only."""
        column = PRESETS.index(self.preset)
        if self.aspect in NAMED:
            return PLUGIN_TABLE[NAMED[self.aspect]][column]
        if self.aspect in REFERENCE_ASPECTS:
            return PLUGIN_TABLE[FIRST_REFERENCE_RATIO if self.references else "16:9"][column]
        if self.aspect in CANVAS_ASPECTS:
            return PLUGIN_TABLE["canvas 2480x3508"][
                column
            ]  # the plugin sends canvas_size with a document open
        if self.aspect in CUSTOM_ASPECTS:
            return PLUGIN_TABLE["3:2"][column]  # sent as an explicit size, see `size`
        return PLUGIN_TABLE[self.aspect][column]

    @property
    def size(self) -> str:
        # 自定义 comes with the size the user typed; any valid one will do.
        return self.expected if self.aspect in CUSTOM_ASPECTS else self.preset

    def plugin_body(self) -> dict:
        refs = [
            {
                "image": "data:image/png;base64," + base64.b64encode(data).decode(),
                "label": f"图层 {i + 1}",
                "source": "layer" if i % 2 == 0 else "document",
                "width": w,
                "height": h,
            }
            for i, (data, w, h) in enumerate(REFERENCES[: self.references])
        ]
        return {
            "prompt": f"a lighthouse at dusk ({self.aspect}, {self.preset})",
            "count": self.count,
            "size": self.size,
            "aspect": self.aspect,
            "quality": "auto",
            "output_format": "png",
            "model": "gpt-image-2",
            "return": "file",
            "canvas_size": dict(CANVAS),
            "references": refs,
        }

    def grpc_request(self):
        return pb.GenerateRequest(
            prompt=f"a lighthouse at dusk ({self.aspect}, {self.preset})",
            count=self.count,
            size=self.size,
            aspect=self.aspect,
            output_format="png",
            canvas_size=pb.CanvasSize(**CANVAS),
            references=[
                pb.Reference(image=data, label=f"layer {i + 1}", source="layer", width=w, height=h)
                for i, (data, w, h) in enumerate(REFERENCES[: self.references])
            ],
        )


def full_rows() -> list[Row]:
    return [Row(*values) for values in itertools.product(*AXES)]


def pairwise_rows() -> list[Row]:
    """Every aspect with every preset, and every pair of values of any two
    axes at least once (greedy all-pairs; deterministic)."""

    def pairs_of(values):
        return {
            ((i, values[i]), (j, values[j])) for i, j in itertools.combinations(range(len(AXES)), 2)
        }

    uncovered = set().union(*(pairs_of(v) for v in itertools.product(*AXES)))
    rows = []

    def best_row(fixed: dict[int, object]) -> tuple:
        choices = [[fixed[i]] if i in fixed else list(axis) for i, axis in enumerate(AXES)]
        return max(itertools.product(*choices), key=lambda v: len(pairs_of(v) & uncovered))

    for aspect, preset in itertools.product(ASPECTS, PRESETS):
        values = best_row({0: aspect, 1: preset})
        uncovered -= pairs_of(values)
        rows.append(Row(*values))
    while uncovered:
        (i, a), (j, b) = min(uncovered, key=repr)
        values = best_row({i: a, j: b})
        uncovered -= pairs_of(values)
        rows.append(Row(*values))
    return rows


def covers_all_pairs(rows: list[Row]) -> bool:
    seen = set()
    for row in rows:
        values = dataclasses.astuple(row)
        seen |= {
            ((i, values[i]), (j, values[j])) for i, j in itertools.combinations(range(len(AXES)), 2)
        }
    wanted = sum(
        len(AXES[i]) * len(AXES[j]) for i, j in itertools.combinations(range(len(AXES)), 2)
    )
    return len(seen) == wanted


def pixel_size(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as img:
        return "%dx%d" % img.size


def check_shim(base: str, row: Row) -> None:
    """The plugin's flow: POST, then fetch and measure every data[].url."""
    reply = request(base, "POST", "/v1/images/generate", row.plugin_body(), timeout=120)
    assert reply.status == 200, (row, reply.body[:400])
    body = reply.json()
    assert body["status"] == "completed" and body["resolved_size"] == row.expected, (
        row,
        body["resolved_size"],
    )
    assert len(body["data"]) == row.count, row
    for item in body["data"]:
        assert item["resolved_size"] == row.expected, (row, item["resolved_size"])
        got = request(base, "GET", item["url"])
        assert got.status == 200, row
        assert pixel_size(got.body) == row.expected, (row, pixel_size(got.body))
    _check_reference_uses(body["references"], row)


def check_grpc(stub, row: Row) -> None:
    responses = list(stub.Generate(row.grpc_request(), timeout=120))
    images = [r.image for r in responses if r.WhichOneof("event") == "image"]
    summary = responses[-1].summary
    assert summary.status == "completed" and summary.resolved_size == row.expected, (row, summary)
    assert len(images) == row.count, row
    for image in images:
        assert image.resolved_size == f"{image.width}x{image.height}" == row.expected, (
            row,
            image.resolved_size,
        )
        data = b"".join(
            chunk.data for chunk in stub.GetImageFile(_file_request(image.id), timeout=60)
        )
        assert pixel_size(data) == row.expected, row
    _check_reference_uses([{"usage": u.usage, "index": u.index} for u in summary.references], row)


def _file_request(image_id: str):
    return pb.GetImageFileRequest(image_id=image_id)


def _check_reference_uses(uses: list[dict], row: Row) -> None:
    usages = [u["usage"] for u in uses]
    assert [u["index"] for u in uses] == list(range(row.references))
    if row.references <= 5:
        assert usages == ["original"] * row.references
    else:
        assert usages == ["original"] * 4 + ["contact_sheet"] * (row.references - 4)


def row_id(row: Row) -> str:
    return f"{row.aspect}-{row.preset}-refs{row.references}-n{row.count}"


def matrix_tests(rows: list[Row]):
    """The two matrix tests over `rows`, for a test module to bind at top
    level: every row through the shim, and the same request through gRPC."""
    each_row = pytest.mark.parametrize("row", rows, ids=row_id)

    @each_row
    def test_plugin_body_through_the_shim(plugin_server, row):
        check_shim(plugin_server.http_base, row)

    @each_row
    def test_same_request_through_grpc(plugin_stub, row):
        check_grpc(plugin_stub, row)

    return test_plugin_body_through_the_shim, test_same_request_through_grpc
