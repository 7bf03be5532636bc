"""Every row of the plugin's size table (http-contract.md), through the one
module that owns size rules, with the plugin's own spellings."""

from __future__ import annotations

import pytest
from codex_image_server.request import sizes

from .matrix import CANVAS, PLUGIN_TABLE, PRESETS

ROWS = [
    (aspect, preset, expected)
    for aspect, column in PLUGIN_TABLE.items()
    for preset, expected in zip(PRESETS, column, strict=True)
]


@pytest.mark.parametrize("aspect,preset,expected", ROWS)
def test_every_row_of_the_plugin_table(aspect, preset, expected):
    if aspect.startswith("canvas"):
        resolved, bad = sizes.resolve(
            preset, "画布比例", canvas=(CANVAS["width"], CANVAS["height"])
        )
    else:
        resolved, bad = sizes.resolve(preset, aspect)
    assert not bad
    assert resolved.text == expected
    # Upper case is the same preset.
    again, _ = sizes.resolve(
        preset.upper(),
        "canvas" if aspect.startswith("canvas") else aspect,
        canvas=(CANVAS["width"], CANVAS["height"]),
    )
    assert again.text == expected


@pytest.mark.parametrize("aspect", ["参考图比例", "原图比例", "自动", "reference", "REFERENCE"])
def test_reference_ratio_and_its_fallback(aspect):
    assert sizes.resolve("2k", aspect, reference=(3000, 2000))[0].text == "2016x1344"
    assert sizes.resolve("2k", aspect)[0].text == "2048x1152"  # 16:9 without references
    resolved = sizes.resolve("2k", aspect)[0]
    assert (resolved.ratio_text, resolved.ratio_source) == ("16:9", "fallback")


def test_canvas_falls_back_to_the_first_reference_then_16_9():
    assert sizes.resolve("1k", "画布比例", reference=(2480, 3508))[0].text == "720x1024"
    assert sizes.resolve("1k", "canvas")[0].text == "1104x624"


@pytest.mark.parametrize("aspect", ["自定义", "custom"])
def test_custom_takes_the_explicit_size(aspect):
    resolved, bad = sizes.resolve("1536x1024", aspect)
    assert not bad and resolved.text == "1536x1024" and resolved.ratio_text == "3:2"
    _, bad = sizes.resolve("2k", aspect)
    assert [(v.field, v.reason) for v in bad] == [("size", "INVALID_SIZE")]
    assert "explicit size" in bad[0].description


def test_a_canvas_wider_than_3_to_1_is_clamped_not_refused():
    resolved, bad = sizes.resolve("2k", "canvas", canvas=(10000, 1000))
    assert not bad
    assert resolved.width == 3 * resolved.height or resolved.width < 3 * resolved.height
    assert not sizes.rule_violations(resolved.width, resolved.height)


def test_every_preset_size_is_valid_for_many_ratios():
    """Beyond the table: whatever a canvas is, the preset size is a valid
    gpt-image-2 size (multiples of 16, within 3:1, within the pixel caps)."""
    for w in range(1, 40, 3):
        for h in range(1, 40, 4):
            for preset in sizes.PRESETS.values():
                width, height = sizes.resolve_preset(preset, (w, h))
                assert width % 16 == 0 and height % 16 == 0
                assert width * height <= preset.max_pixels and max(width, height) <= sizes.MAX_EDGE
                assert max(width, height) <= 3 * min(width, height)
