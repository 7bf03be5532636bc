"""The local matte: key a flat key-colour background out of an opaque image,
with soft edges and spill suppression, and the figures that verify an alpha.

Model: every pixel is C = a*F + (1-a)*K (foreground F over the key K). Two
bounds on `a` need no knowledge of F: `a_lo`, the least alpha for which
F stays inside the colour cube (exact for saturated colours), and `a_hi`,
the classic difference keyer (exact for colours with no excess of the key's
hue, e.g. neutrals). Between them, `a` is the projection of C onto the line
from K to the local foreground colour, estimated from nearby surely-opaque
pixels. Colours are then un-mixed from the key and stripped of key spill.

Arrays are uint8 HxWx3/4 in, uint8 out; work is float32 in 0..1.
"""

from __future__ import annotations

import dataclasses

import numpy as np

TRANSPARENT_MAX = 8  # alpha <= this counts as see-through
OPAQUE_MIN = 247  # alpha >= this counts as opaque
# Verification: a transparent background must leave at least this much of
# the picture see-through, keep at least this much visible, and at most this
# share of the subject's edge may still look like the key colour.
MIN_TRANSPARENT_SHARE = 0.02
MIN_VISIBLE_SHARE = 0.01
MAX_EDGE_RESIDUE = 0.10
# Keying: the image's border must be mostly the key colour.
BORDER_PX = 2
MIN_BORDER_KEY_SHARE = 0.5
KEY_DISTANCE = 0.30  # RGB distance (0..1 units) still counted as "the key colour"
KEY_HUE_RESIDUE = 0.25  # key-hue excess that makes an edge pixel "residue"
OFF_LINE = 0.08  # colour distance from the K -> F line beyond which F_est is not this pixel's
BLOCK = 4  # grid of the local foreground estimate, in pixels
MAX_NOISE_FLOOR = 0.2  # a key noisier than this is not flat: its specks stay visible
SNAP = 0.04  # alphas this close to 0 or 1 are noise in the flat key


class CannotKey(Exception):
    """The image is not a subject on a flat key colour."""


@dataclasses.dataclass(frozen=True)
class Figures:
    alpha_min: int
    alpha_max: int
    transparent_share: float
    opaque_share: float
    edge_residue: float
    key_color: str


def has_real_alpha(alpha: np.ndarray) -> bool:
    """The image tool's alpha is real when a fair part is see-through."""
    return float((alpha <= TRANSPARENT_MAX).mean()) >= MIN_TRANSPARENT_SHARE


def _key_channels(key) -> tuple[list[int], list[int]]:
    high = [c for c in range(3) if key[c] >= 128]
    low = [c for c in range(3) if key[c] < 128]
    if not high or not low:
        raise ValueError("a key colour needs both high and low channels (e.g. green or magenta)")
    return high, low


def _key_excess(rgb: np.ndarray, key) -> np.ndarray:
    """How much more of the key's hue than of the other channels (0..1 units)."""
    high, low = _key_channels(key)
    return rgb[..., high].min(axis=-1) - rgb[..., low].max(axis=-1)


def _box_sum(a: np.ndarray, r: int) -> np.ndarray:
    """Sum over the (2r+1)^2 window around each pixel (zero outside), via integral images."""
    pad = [(r + 1, r)] + [(r + 1, r)] + [(0, 0)] * (a.ndim - 2)
    s = np.pad(a, pad).cumsum(0).cumsum(1)
    h, w = a.shape[:2]
    k = 2 * r + 1
    return s[k : k + h, k : k + w] - s[0:h, k : k + w] - s[k : k + h, 0:w] + s[0:h, 0:w]


def _near(mask: np.ndarray, r: int) -> np.ndarray:
    """Pixels within r (Chebyshev) of any True pixel: a separable dilation."""
    out = mask.copy()
    for axis in (0, 1):
        src = out.copy()
        for s in range(1, r + 1):
            if axis == 0:
                out[s:] |= src[:-s]
                out[:-s] |= src[s:]
            else:
                out[:, s:] |= src[:, :-s]
                out[:, :-s] |= src[:, s:]
    return out


def _border(a: np.ndarray) -> np.ndarray:
    b = BORDER_PX
    return np.concatenate(
        [
            a[:b].reshape(-1, 3),
            a[-b:].reshape(-1, 3),
            a[:, :b].reshape(-1, 3),
            a[:, -b:].reshape(-1, 3),
        ]
    )


def _estimate_key(rgb: np.ndarray, key) -> np.ndarray:
    """The key colour as actually painted: the median of the border pixels near it."""
    nominal = np.asarray(key, np.float32) / 255
    border = _border(rgb)
    close = np.linalg.norm(border - nominal, axis=-1) < KEY_DISTANCE
    share = float(close.mean())
    if share < MIN_BORDER_KEY_SHARE:
        raise CannotKey(
            f"only {share:.0%} of the border is the key colour {_hex(key)} "
            f"(needs {MIN_BORDER_KEY_SHARE:.0%})"
        )
    return np.median(border[close], axis=0)


def _hex(key) -> str:
    r, g, b = (int(v) for v in key)
    return f"#{r:02x}{g:02x}{b:02x}"


def _foreground_estimate(
    rgb: np.ndarray, sure: np.ndarray, ys: np.ndarray, xs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """At pixels (ys, xs): the local mean colour of surely-opaque pixels, near
    ones first; and whether there is one.

    Worked out on BLOCK x BLOCK blocks (a local mean needs no finer grid),
    which makes it about BLOCK^2 times cheaper on a 1.5 MP image."""
    h, w = sure.shape
    ph, pw = -h % BLOCK, -w % BLOCK
    weight = np.pad(sure.astype(np.float32), ((0, ph), (0, pw)))
    weighted = np.pad(rgb, ((0, ph), (0, pw), (0, 0))) * weight[..., None]
    bh, bw = weight.shape[0] // BLOCK, weight.shape[1] // BLOCK
    weight = weight.reshape(bh, BLOCK, bw, BLOCK).sum((1, 3))
    weighted = weighted.reshape(bh, BLOCK, bw, BLOCK, 3).sum((1, 3))
    est = np.zeros((bh, bw, 3), np.float32)
    found = np.zeros((bh, bw), bool)
    for r in (1, 2, 6):  # blocks: about 6, 10 and 26 pixels around
        n = _box_sum(weight, r)
        fill = (n > 0.5) & ~found
        if fill.any():
            est[fill] = _box_sum(weighted, r)[fill] / n[fill][..., None]
            found |= fill
    by, bx = ys // BLOCK, xs // BLOCK
    return est[by, bx], found[by, bx]


def _noise_floor(a_border: np.ndarray) -> float:
    """Alpha below which a pixel is the key's own noise: what the border's
    key-coloured pixels reach (a painted key is never perfectly flat)."""
    keyish = a_border[a_border < 0.5]
    level = float(np.percentile(keyish, 99.5)) + 0.01 if keyish.size else 0.0
    return min(MAX_NOISE_FLOOR, max(SNAP, level))


def _lower_bound(c: np.ndarray, k: np.ndarray) -> np.ndarray:
    """The least alpha for which F = (C - (1-a)K)/a stays in [0,1] in every channel."""
    with np.errstate(divide="ignore", invalid="ignore"):
        dark = np.where(k > 1e-3, 1 - c / np.maximum(k, 1e-3), 0)
        bright = np.where(k < 1 - 1e-3, (c - k) / np.maximum(1 - k, 1e-3), 0)
    return np.clip(np.maximum(dark, bright).max(axis=-1), 0, 1)


def key_out(rgb8: np.ndarray, key) -> np.ndarray:
    """An opaque subject on the key colour -> RGBA with a soft, spill-free alpha.

    Only the pixels that can be partly transparent (the edge band and any
    semi-transparent parts) get the expensive treatment."""
    rgb = rgb8.astype(np.float32) / 255
    k = _estimate_key(rgb, key)
    k_excess = float(_key_excess(k, key))
    if k_excess < 0.2:
        raise CannotKey(f"the background {_hex(k * 255)} is too dull to key")
    # Upper bound, and the whole answer away from edges: the difference keyer.
    alpha = np.clip(1 - _key_excess(rgb, key) / k_excess, 0, 1)
    b = BORDER_PX
    a_border = np.concatenate(
        [alpha[:b].ravel(), alpha[-b:].ravel(), alpha[:, :b].ravel(), alpha[:, -b:].ravel()]
    )
    sure = ~_near(alpha < 0.99, 2)  # surely opaque: opaque and not at an edge
    alpha[sure] = 1
    ys, xs = np.nonzero((alpha > 0) & ~sure)
    c, a_hi = rgb[ys, xs], alpha[ys, xs]
    a_lo = np.minimum(_lower_bound(c, k), a_hi)  # the keyer's bound wins over noise in the key
    f_est, found = _foreground_estimate(rgb, sure, ys, xs)
    d = f_est - k
    dd = (d * d).sum(-1)
    proj = ((c - k) * d).sum(-1) / np.maximum(dd, 1e-6)
    # Trust the projection only where C really lies on the line K -> F_est;
    # elsewhere the estimate is some other part of the subject.
    off_line = np.linalg.norm(c - (k + proj[:, None] * d), axis=-1)
    usable = found & (dd > 0.05) & (off_line < OFF_LINE)
    alpha[ys, xs] = np.clip(np.where(usable, proj, a_hi), a_lo, a_hi)
    alpha[alpha < _noise_floor(a_border)] = 0
    alpha[alpha > 1 - SNAP] = 1
    out = np.empty(rgb.shape[:2] + (4,), np.float32)
    out[..., :3], out[..., 3] = rgb, alpha
    colour = out[..., :3]  # a view: writes land in `out`
    # Un-mix the key from partly transparent pixels ...
    ys, xs = np.nonzero((alpha > 0) & (alpha < 1))
    a = alpha[ys, xs][:, None]
    colour[ys, xs] = np.clip((rgb[ys, xs] - (1 - a) * k) / a, 0, 1)
    # ... then take out the key's spill near the edge, and keep no key colour
    # hidden under full transparency.
    ys, xs = np.nonzero(_near(alpha < 1, 2) & (alpha > 0))
    colour[ys, xs] = _despilled(colour[ys, xs], key)
    colour[alpha == 0] = 0
    return _to8(out)


def _despilled(c: np.ndarray, key) -> np.ndarray:
    """Colours (N,3) with the key hue's excess taken out of the key channels."""
    high, _ = _key_channels(key)
    excess = np.clip(_key_excess(c, key), 0, None)
    c = c.copy()
    for ch in high:
        c[:, ch] -= excess
    return c


def despill(rgba8: np.ndarray, key) -> np.ndarray:
    """For the image model's own alpha: clean key spill from partly transparent
    pixels. Opaque key-coloured edge pixels are left alone: they are a halo
    the measurement must see."""
    out = rgba8.copy()
    ys, xs = np.nonzero((rgba8[..., 3] > 0) & (rgba8[..., 3] < 255))
    out[ys, xs, :3] = _to8(_despilled(rgba8[ys, xs, :3].astype(np.float32) / 255, key))
    return out


def over_key(rgba8: np.ndarray, key) -> np.ndarray:
    """Composite an RGBA image over the key colour (to key it out again)."""
    a = rgba8[..., 3:].astype(np.float32) / 255
    rgb = rgba8[..., :3].astype(np.float32) * a + np.asarray(key, np.float32) * (1 - a)
    return (rgb + 0.5).astype(np.uint8)


def _to8(a: np.ndarray) -> np.ndarray:
    return (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)


def measure(rgba8: np.ndarray, key) -> Figures:
    alpha = rgba8[..., 3]
    seen = alpha <= TRANSPARENT_MAX
    visible = ~seen
    # The subject's edge: visible pixels next to see-through ones, and every partly transparent
    # pixel.
    edge = (visible & _near(seen, 1)) | ((alpha > TRANSPARENT_MAX) & (alpha < OPAQUE_MIN))
    n_edge = int(edge.sum())
    residue = 0.0
    if n_edge:
        keyish = _key_excess(rgba8[..., :3].astype(np.float32) / 255, key) > KEY_HUE_RESIDUE
        residue = float((keyish & edge).sum()) / n_edge
    return Figures(
        alpha_min=int(alpha.min()),
        alpha_max=int(alpha.max()),
        transparent_share=float(seen.mean()),
        opaque_share=float((alpha >= OPAQUE_MIN).mean()),
        edge_residue=residue,
        key_color=_hex(key),
    )


def verdict(f: Figures) -> str:
    """Empty when the figures pass; else what failed."""
    if f.transparent_share < MIN_TRANSPARENT_SHARE:
        return f"only {f.transparent_share:.1%} is transparent (needs {MIN_TRANSPARENT_SHARE:.0%})"
    if 1 - f.transparent_share < MIN_VISIBLE_SHARE:
        return f"only {1 - f.transparent_share:.1%} is visible: nothing is left of the subject"
    if f.edge_residue > MAX_EDGE_RESIDUE:
        return (
            f"{f.edge_residue:.1%} of the subject's edge still shows the key colour "
            f"(at most {MAX_EDGE_RESIDUE:.0%})"
        )
    return ""
