"""JPEG to native-size RGB: spdl_rs `load_image` against simplejpeg
`decode_jpeg`, from bytes and from paths, 1 thread and 2 (a
ThreadPoolExecutor over files), in one process, interleaved rounds.

    PYTHONPATH=spdl-python/python .venv-torch/bin/python benches/python/jpeg_native.py [--rounds 7]

Uses the first 256 JPEGs of bench-out/images/e2e (made by e2e_torch.py:
500x375 to 1024x768, quality 90). Prints images/s per contender (median).
"""
import argparse
import random
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import simplejpeg

import spdl_rs.io as rio

IMAGES = Path(__file__).resolve().parents[2] / "bench-out" / "images" / "e2e"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    paths = sorted(str(p) for p in IMAGES.glob("*.jpg"))[:256]
    datas = [Path(p).read_bytes() for p in paths]

    def simplejpeg_path(p):
        return simplejpeg.decode_jpeg(Path(p).read_bytes(), colorspace="RGB")

    def on_two(fn):
        with ThreadPoolExecutor(2) as pool:
            return list(pool.map(fn, paths))

    contenders = {
        "spdl_rs, bytes": lambda: [rio.load_image(d) for d in datas],
        "simplejpeg, bytes": lambda: [simplejpeg.decode_jpeg(d, colorspace="RGB") for d in datas],
        "spdl_rs, path": lambda: [rio.load_image(p) for p in paths],
        "simplejpeg, path": lambda: [simplejpeg_path(p) for p in paths],
        "spdl_rs, path, 2 threads": lambda: on_two(rio.load_image),
        "simplejpeg, path, 2 threads": lambda: on_two(simplejpeg_path),
    }
    for fn in contenders.values():
        fn()
    times = {name: [] for name in contenders}
    for _ in range(a.rounds):
        for name in random.sample(list(contenders), len(contenders)):
            start = time.perf_counter()
            contenders[name]()
            times[name].append(time.perf_counter() - start)
    for name, t in times.items():
        print(f"{name:28} {len(paths) / statistics.median(t):7.0f} img/s")


if __name__ == "__main__":
    main()
