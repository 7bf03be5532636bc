"""The local matte on pictures with a known alpha (tests/transparency/pictures.py):
the recovered alpha must match the truth within a stated tolerance, and a
picture that is not a subject on the key colour is refused.

Tolerance (alpha in 0..1): mean absolute error <= 0.01 over the whole image,
<= 0.03 over the soft and semi-transparent pixels, 99th percentile <= 0.08.
Measured: green key 0.004 / 0.016 / 0.051, magenta key 0.002 / 0.007 / 0.035.
"""

from __future__ import annotations

import numpy as np
import pytest
from codex_image_server.errors import Kind, ServiceError
from codex_image_server.finishing import matte, transparency
from PIL import Image, ImageDraw

from tests.transparency import pictures

MEAN_TOL, BAND_TOL, P99_TOL = 0.01, 0.03, 0.08


@pytest.mark.parametrize("key", [transparency.GREEN, transparency.MAGENTA])
def test_keyed_alpha_matches_the_truth(key):
    fg, alpha = pictures.truth()
    made = transparency.make_transparent(pictures.png(pictures.on_key(fg, alpha, key)), key)
    assert made.alpha_source == transparency.KEYED_MATTE
    got = pictures.rgba_of(made.png)
    err = np.abs(got[..., 3] / 255 - alpha)
    band = (alpha > 0.004) & (alpha < 0.996)
    assert band.sum() > 5000, "the picture has soft edges and semi-transparent parts"
    assert err.mean() <= MEAN_TOL, err.mean()
    assert err[band].mean() <= BAND_TOL, err[band].mean()
    assert np.percentile(err, 99) <= P99_TOL, np.percentile(err, 99)
    # Colours come back un-mixed from the key: opaque and half-transparent parts
    # keep their own colour (within a few levels).
    seen = alpha > 0.5
    assert np.abs(got[..., :3].astype(int) - fg.astype(int))[seen].mean() < 3
    f = made.figures
    assert (f.alpha_min, f.alpha_max) == (0, 255)
    assert abs(f.transparent_share - float((alpha <= 8 / 255).mean())) < 0.01
    assert f.edge_residue <= matte.MAX_EDGE_RESIDUE and f.key_color == transparency.hex_color(key)


def test_the_key_as_painted_need_not_be_pure():
    """Models paint #00ff00 as something near it: the key is read from the border."""
    fg, alpha = pictures.truth()
    painted = (24, 236, 30)
    made = transparency.make_transparent(
        pictures.png(pictures.on_key(fg, alpha, painted)), transparency.GREEN
    )
    err = np.abs(pictures.rgba_of(made.png)[..., 3] / 255 - alpha)
    assert err.mean() <= MEAN_TOL and np.percentile(err, 99) <= P99_TOL


def test_spill_is_suppressed_on_the_edge():
    """A green fringe left around the subject is taken out of its edge pixels."""
    fg, alpha = pictures.truth()
    composite = pictures.on_key(fg, alpha, transparency.GREEN).astype(int)
    edge = (alpha > 0.1) & (alpha < 0.9)
    composite[edge, 1] = np.minimum(255, composite[edge, 1] + 40)  # extra green bounce light
    made = transparency.make_transparent(
        pictures.png(composite.astype(np.uint8)), transparency.GREEN
    )
    got = pictures.rgba_of(made.png)
    visible_edge = edge & (got[..., 3] > 8)
    excess = got[..., 1].astype(int) - np.maximum(got[..., 0], got[..., 2]).astype(int)
    assert (excess[visible_edge] > 16).mean() < 0.02
    assert made.figures.edge_residue <= matte.MAX_EDGE_RESIDUE


def test_real_alpha_from_the_image_model_is_kept():
    fg, alpha = pictures.truth()
    rgba = np.dstack([fg, (alpha * 255 + 0.5).astype(np.uint8)])
    made = transparency.make_transparent(pictures.png(rgba), transparency.GREEN)
    assert made.alpha_source == transparency.IMAGE_MODEL
    assert np.array_equal(pictures.rgba_of(made.png)[..., 3], rgba[..., 3])


def test_an_opaque_rgba_result_falls_back_to_the_matte():
    """The reported failure: alpha channel present, but everything opaque."""
    fg, alpha = pictures.truth()
    composite = pictures.on_key(fg, alpha, transparency.GREEN)
    rgba = np.dstack([composite, np.full(alpha.shape, 255, np.uint8)])
    made = transparency.make_transparent(pictures.png(rgba), transparency.GREEN)
    assert made.alpha_source == transparency.KEYED_MATTE
    assert abs(made.figures.transparent_share - float((alpha <= 8 / 255).mean())) < 0.01


def _photo(size=(256, 192)) -> bytes:
    img = Image.new("RGB", size, (90, 120, 160))
    d = ImageDraw.Draw(img)
    for i in range(0, size[0], 16):
        d.line([(i, 0), (size[0] - i, size[1])], fill=(200, (i * 3) % 256, 40), width=5)
    return pictures.png(np.asarray(img))


@pytest.mark.parametrize(
    "picture, why",
    [
        (_photo(), "border is the key colour"),
        (
            pictures.png(np.full((64, 64, 3), (0, 255, 0), np.uint8)),
            "nothing is left of the subject",
        ),
    ],
)
def test_a_picture_that_cannot_be_keyed_is_refused(picture, why):
    with pytest.raises(ServiceError) as err:
        transparency.make_transparent(picture, transparency.GREEN)
    assert err.value.kind is Kind.FAILED_PRECONDITION and err.value.reason == "TRANSPARENCY_FAILED"
    assert why in err.value.message


def test_real_alpha_with_a_key_coloured_halo_is_keyed_again():
    """The model cut the subject out but kept an opaque ring of the key colour
    around it: the residue check sees it, and the matte takes the ring away."""
    fg, alpha = pictures.truth()
    hard = np.where(alpha > 0.02, 255, 0).astype(np.uint8)
    rgb = pictures.on_key(
        fg, alpha, transparency.GREEN
    )  # the ring: soft edge pixels mixed with green
    rgba = np.dstack([rgb, hard])
    assert matte.verdict(matte.measure(matte.despill(rgba, transparency.GREEN), transparency.GREEN))
    made = transparency.make_transparent(pictures.png(rgba), transparency.GREEN)
    assert made.alpha_source == transparency.KEYED_MATTE
    assert made.figures.edge_residue <= matte.MAX_EDGE_RESIDUE
    err = np.abs(pictures.rgba_of(made.png)[..., 3] / 255 - alpha)
    assert err.mean() <= MEAN_TOL


def test_too_little_transparency_is_refused():
    """Key colour only along the border: after keying, under 2 % is see-through."""
    rgb = np.full((600, 600, 3), (180, 60, 40), np.uint8)
    rgb[:2], rgb[-2:], rgb[:, :2], rgb[:, -2:] = (0, 255, 0), (0, 255, 0), (0, 255, 0), (0, 255, 0)
    with pytest.raises(ServiceError) as err:
        transparency.make_transparent(pictures.png(rgb), transparency.GREEN)
    assert err.value.reason == "TRANSPARENCY_FAILED" and "transparent" in err.value.message
    assert float(err.value.metadata["transparent_share"]) < matte.MIN_TRANSPARENT_SHARE


def test_key_colour_avoids_the_subject():
    assert transparency.key_color("a red fox sitting") == transparency.GREEN
    assert transparency.key_color("a green frog on a leaf") == transparency.MAGENTA


def test_noise_in_the_painted_key_leaves_no_specks():
    """A model never paints a perfectly flat key: +-6 levels of noise must not
    leave visible specks in the background, nor move the alpha much."""
    fg, alpha = pictures.truth()
    composite = pictures.on_key(fg, alpha, transparency.GREEN).astype(int)
    noise = np.random.default_rng(7).integers(-6, 7, composite.shape)
    noisy = np.clip(composite + noise, 0, 255).astype(np.uint8)
    made = transparency.make_transparent(pictures.png(noisy), transparency.GREEN)
    got = pictures.rgba_of(made.png)[..., 3]
    background = alpha == 0
    assert (got[background] == 0).mean() > 0.999
    err = np.abs(got / 255 - alpha)
    assert err.mean() <= 2 * MEAN_TOL
