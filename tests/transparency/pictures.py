"""Pictures with a known alpha, drawn with Pillow: a subject with soft edges
and semi-transparent parts, composited over a key colour exactly the way a
matte assumes (C = a*F + (1-a)*K), so the recovered alpha can be compared
with the truth."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = (384, 320)


def truth(key_free_colours: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(foreground RGB uint8, alpha float 0..1) of a test subject."""
    w, h = SIZE
    fg = Image.new("RGB", SIZE, (128, 128, 128))
    shapes = Image.new("L", SIZE, 0)
    d_fg, d_a = ImageDraw.Draw(fg), ImageDraw.Draw(shapes)
    # An opaque red disc and a blue box, soft-edged by the blur below.
    # The colours reach past the shapes: a subject's edge has the subject's colour.
    d_fg.ellipse([32, 32, 208, 208], fill=(210, 40, 30))
    d_a.ellipse([40, 40, 200, 200], fill=255)
    d_fg.rectangle([212, 52, 348, 188], fill=(40, 60, 200))
    d_a.rectangle([220, 60, 340, 180], fill=255)
    # A white-ish label and a dark outline: neutral colours.
    d_fg.rectangle([52, 212, 338, 288], fill=(235, 230, 225))
    d_a.rectangle([60, 220, 330, 280], fill=255)
    d_fg.rectangle([52, 212, 338, 232], fill=(30, 30, 35))
    alpha = np.asarray(shapes.filter(ImageFilter.GaussianBlur(2.5)), np.float32) / 255
    # A semi-transparent grey "glass" pane (55 %) and a 30 % white glow.
    glass = Image.new("L", SIZE, 0)
    ImageDraw.Draw(glass).rectangle([150, 120, 260, 210], fill=255)
    g = np.asarray(glass.filter(ImageFilter.GaussianBlur(1.5)), np.float32) / 255 * 0.55
    glow = Image.new("L", SIZE, 0)
    ImageDraw.Draw(glow).ellipse([250, 200, 370, 300], fill=255)
    gl = np.asarray(glow.filter(ImageFilter.GaussianBlur(6)), np.float32) / 255 * 0.30
    fg_arr = np.asarray(fg, np.float32)
    glass_col = np.array([150, 150, 160], np.float32)
    glow_col = np.array([250, 250, 250], np.float32)
    # Layer glass, then glow, over the subject ("over" compositing).
    for layer_a, col in ((g, glass_col), (gl, glow_col)):
        new_a = layer_a + alpha * (1 - layer_a)
        with np.errstate(invalid="ignore", divide="ignore"):
            fg_arr = np.where(
                new_a[..., None] > 0,
                (col * layer_a[..., None] + fg_arr * (alpha * (1 - layer_a))[..., None])
                / np.maximum(new_a, 1e-6)[..., None],
                fg_arr,
            )
        alpha = new_a
    return fg_arr.clip(0, 255).astype(np.uint8), alpha


def on_key(fg: np.ndarray, alpha: np.ndarray, key) -> np.ndarray:
    k = np.asarray(key, np.float32)
    c = fg.astype(np.float32) * alpha[..., None] + k * (1 - alpha[..., None])
    return (c + 0.5).clip(0, 255).astype(np.uint8)


def png(array: np.ndarray) -> bytes:
    mode = "RGBA" if array.shape[-1] == 4 else "RGB"
    out = io.BytesIO()
    Image.fromarray(array, mode).save(out, format="PNG")
    return out.getvalue()


def rgba_of(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGBA"))
