#!/usr/bin/env python3
"""Generate the image set used by benches/compare_image.py.

    .venv-bench/bin/python benches/make_images.py            # -> bench-out/images/
    .venv-bench/bin/python benches/make_images.py --force    # regenerate
    .venv-bench/bin/python benches/make_images.py --out /tmp/imgs --jpegs 400

Needs numpy and Pillow (both installed by benches/setup_python.sh).

Deterministic: every image comes from its own seeded ``numpy.random.default_rng``
and is encoded by Pillow with fixed settings, so the same numpy/Pillow
versions (pinned in setup_python.sh) reproduce the same bytes. A stamp file
(``.stamp``) records the generator parameters; when it matches, nothing is
regenerated.

Content ("ImageNet-like" entropy, not flat gradients):
  * background: colour 1/f^a noise (a in [0.6, 1.05]) synthesised in the
    Fourier domain (natural images have roughly 1/f amplitude spectra), with
    channel correlation through a random 3x3 colour mix around a random mean
    colour;
  * 6-30 shapes (ellipses, rectangles, polygons), each filled with its own
    colour + its own 1/f texture, some with blurred (defocused) edges;
  * fine luminance texture: 1/f^0.6 noise, amplitude 10-30 (grain, foliage,
    fabric...), plus mild Gaussian sensor noise (sigma 1-2.5).
  * no EXIF / ICC / comments: orientation handling is identical for every
    decoder.

JPEGs (``jpeg/NNNN.jpg``, default 240): Pillow quality 90, 4:2:0 chroma
subsampling, baseline (not progressive), not optimised. Sizes: ~65% the
ImageNet-typical 500x375 / 375x500 / 500x333 / 333x500-ish (short side held
>= 375), the rest 640x480 ... 1920x1080 in both orientations (long side <= 1920).
Aim: ~100-150 KB per 500x375 image.

PNGs (``png/NNNN.png``, default 50): 640x480 RGB, same kind of content,
Pillow's default compression level (6).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench-out" / "images"
GENERATOR_VERSION = 1  # bump when the content recipe changes

# (width, height, weight). Short side >= 375, long side <= 1920.
SIZES = [
    (500, 375, 40), (375, 500, 12), (500, 400, 5), (400, 500, 3),
    (500, 377, 5),                                   # odd sizes are common in ImageNet
    (640, 480, 8), (480, 640, 3),
    (800, 600, 6), (600, 800, 2),
    (1024, 768, 5), (768, 1024, 2),
    (1280, 720, 3), (1280, 960, 2),
    (1600, 1200, 1), (1920, 1080, 2), (1080, 1920, 1),
]

JPEG_QUALITY = 90
JPEG_SUBSAMPLING = 2  # Pillow: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0


def pink_noise(rng: np.random.Generator, h: int, w: int, alpha: float, channels: int) -> np.ndarray:
    """(h, w, channels) float32 noise with a 1/f^alpha amplitude spectrum, unit std."""
    fy = np.fft.fftfreq(h).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(w).astype(np.float32)[None, :]
    f = np.sqrt(fy * fy + fx * fx)
    f[0, 0] = 1.0
    amp = f ** (-alpha)
    amp[0, 0] = 0.0
    out = np.empty((h, w, channels), np.float32)
    for c in range(channels):
        white = rng.standard_normal((h, w), dtype=np.float32)
        spec = np.fft.rfft2(white) * amp
        x = np.fft.irfft2(spec, s=(h, w)).astype(np.float32)
        x /= x.std() + 1e-6
        out[..., c] = x
    return out


def colour_field(rng: np.random.Generator, h: int, w: int, alpha: float, contrast: float) -> np.ndarray:
    """Correlated colour 1/f noise around a random mean colour, float32 0..255-ish."""
    n = pink_noise(rng, h, w, alpha, 3)
    mix = rng.normal(0.0, 0.35, (3, 3)).astype(np.float32) + np.eye(3, dtype=np.float32) * 0.5
    lum = rng.normal(0.0, 1.0, 3).astype(np.float32)  # shared luminance component
    n = n @ mix.T + n[..., :1] * lum[None, None, :] * 0.6
    mean = rng.uniform(40, 215, 3).astype(np.float32)
    return mean + n * contrast


def shape_mask(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    m = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(m)
    kind = rng.integers(0, 3)
    cx, cy = rng.uniform(-0.1, 1.1) * w, rng.uniform(-0.1, 1.1) * h
    s = min(w, h)
    rx, ry = rng.uniform(0.04, 0.45) * s, rng.uniform(0.04, 0.45) * s
    if kind == 0:
        d.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=255)
    elif kind == 1:
        d.rectangle([cx - rx, cy - ry, cx + rx, cy + ry], fill=255)
    else:
        k = int(rng.integers(3, 9))
        ang = np.sort(rng.uniform(0, 2 * np.pi, k))
        rad = rng.uniform(0.3, 1.0, k)
        pts = [(float(cx + rx * r * np.cos(a)), float(cy + ry * r * np.sin(a))) for a, r in zip(ang, rad)]
        d.polygon(pts, fill=255)
    if rng.random() < 0.4:  # defocused edge
        m = m.filter(ImageFilter.GaussianBlur(float(rng.uniform(1.0, 6.0))))
    return np.asarray(m, dtype=np.float32) / 255.0


def synth_image(seed: int, w: int, h: int, shapes: tuple[int, int] = (6, 30),
                texture_amp: tuple[float, float] = (10.0, 30.0),
                noise_sigma: tuple[float, float] = (1.0, 2.5)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = colour_field(rng, h, w, float(rng.uniform(0.6, 1.05)), float(rng.uniform(18, 38)))
    for _ in range(int(rng.integers(shapes[0], shapes[1] + 1))):
        m = shape_mask(rng, h, w)
        ys, xs = np.nonzero(m > 0)
        if ys.size == 0:
            continue
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        fill = colour_field(rng, y1 - y0, x1 - x0, float(rng.uniform(0.7, 1.3)),
                            float(rng.uniform(8, 30)))
        mm = m[y0:y1, x0:x1, None]
        img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * (1.0 - mm) + fill * mm
    # fine, mostly-luminance texture (grain, foliage, fabric...): 1/f^0.6 noise
    img += pink_noise(rng, h, w, 0.6, 1) * float(rng.uniform(*texture_amp))
    img += rng.normal(0.0, float(rng.uniform(*noise_sigma)), img.shape).astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def jpeg_sizes(n: int, seed: int = 20240601) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    wts = np.array([s[2] for s in SIZES], dtype=np.float64)
    idx = rng.choice(len(SIZES), size=n, p=wts / wts.sum())
    return [(SIZES[i][0], SIZES[i][1]) for i in idx]


def params(args) -> dict:
    return {"version": GENERATOR_VERSION, "jpegs": args.jpegs, "pngs": args.pngs,
            "quality": JPEG_QUALITY, "subsampling": JPEG_SUBSAMPLING, "sizes": SIZES,
            "numpy": np.__version__, "pillow": Image.__version__}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--jpegs", type=int, default=240)
    ap.add_argument("--pngs", type=int, default=50)
    ap.add_argument("--force", action="store_true", default=bool(os.environ.get("FORCE")))
    a = ap.parse_args()

    stamp = a.out / ".stamp"
    want = params(a)
    if not a.force and stamp.is_file():
        try:
            if json.loads(stamp.read_text()) == json.loads(json.dumps(want)):
                print(f"[make_images] up to date, skipping: {a.out}", file=sys.stderr)
                return 0
        except json.JSONDecodeError:
            pass
    (a.out / "jpeg").mkdir(parents=True, exist_ok=True)
    (a.out / "png").mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    for old in list((a.out / "jpeg").glob("*.jpg")) + list((a.out / "png").glob("*.png")):
        old.unlink()

    t0 = time.perf_counter()
    sizes = jpeg_sizes(a.jpegs)
    digest = hashlib.sha256()
    small = []
    total = 0
    for i, (w, h) in enumerate(sizes):
        arr = synth_image(1000 + i, w, h)
        p = a.out / "jpeg" / f"{i:04d}.jpg"
        tmp = p.with_suffix(".tmp")
        Image.fromarray(arr, "RGB").save(tmp, "JPEG", quality=JPEG_QUALITY,
                                         subsampling=JPEG_SUBSAMPLING, optimize=False,
                                         progressive=False)
        tmp.replace(p)
        data = p.read_bytes()
        digest.update(data)
        total += len(data)
        if (w, h) == (500, 375):
            small.append(len(data))
    for i in range(a.pngs):
        arr = synth_image(500000 + i, 640, 480)
        p = a.out / "png" / f"{i:04d}.png"
        tmp = p.with_suffix(".tmp")
        Image.fromarray(arr, "RGB").save(tmp, "PNG")  # default compress_level (6)
        tmp.replace(p)
        digest.update(p.read_bytes())
    png_total = sum(f.stat().st_size for f in (a.out / "png").glob("*.png"))
    stamp.write_text(json.dumps(want))
    print(f"[make_images] wrote {a.jpegs} JPEGs ({total / 1e6:.1f} MB; 500x375 median "
          f"{(np.median(small) / 1e3 if small else float('nan')):.0f} KB over {len(small)}) and "
          f"{a.pngs} PNGs ({png_total / 1e6:.1f} MB) to {a.out} in {time.perf_counter() - t0:.1f}s; "
          f"sha256 {digest.hexdigest()[:16]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
