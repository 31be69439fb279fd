#!/usr/bin/env python3
"""JPEG encoding: spdl_rs.io.encode_image against Pillow and simplejpeg, side by side
in interleaved rounds (issue 20), one thread, quality 95 and 4:2:0 for all three
(Pillow's default subsampling), on 64 decoded photos of bench-out/images/e2e.

    PYTHONPATH=spdl-python/python .venv-bench/bin/python benches/python/encode_image.py
"""
import io
import random
import statistics
import time
from pathlib import Path

import numpy as np
import simplejpeg
from PIL import Image

import spdl_rs.io as sio

ROOT = Path(__file__).resolve().parents[2]


def main():
    paths = sorted((ROOT / "bench-out" / "images" / "e2e").glob("*.jpg"))[:64]
    images = [sio.load_image(p) for p in paths]

    def pillow(a):
        out = io.BytesIO()
        Image.fromarray(a).save(out, "JPEG", quality=95)
        return out.getvalue()

    fns = {
        "spdl_rs": lambda a: sio.encode_image(a, "jpeg", quality=95, subsampling=420),
        "Pillow": pillow,
        "simplejpeg": lambda a: simplejpeg.encode_jpeg(a, quality=95, colorsubsampling="420"),
    }
    times = {k: [] for k in fns}
    for _ in range(7):
        for k in random.sample(list(fns), len(fns)):
            t = time.perf_counter()
            for a in images:
                fns[k](a)
            times[k].append((time.perf_counter() - t) / len(images))
    base = statistics.median(times["spdl_rs"])
    print("| encoder | ms/image | images/s | time / spdl_rs |")
    print("|---|---|---|---|")
    for k, ts in times.items():
        m = statistics.median(ts)
        print(f"| {k} | {m * 1e3:.2f} | {1 / m:.0f} | {m / base:.2f}x |")
    sizes = {k: np.mean([len(f(a)) for a in images[:8]]) for k, f in fns.items()}
    print("mean bytes (first 8):", {k: int(v) for k, v in sizes.items()})


if __name__ == "__main__":
    main()
