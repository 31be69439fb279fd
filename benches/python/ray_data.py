#!/usr/bin/env python3
"""Ray Data on a local cluster: JPEG files -> decoded -> 224x224 RGB, one pass.

    .venv-test/bin/python benches/python/ray_data.py --rounds 3      # after scripts/test.sh

Contenders, each reading the same --count JPEGs (benches/python/e2e_torch.py's
ImageNet-like set, made in bench-out/images/e2e when missing) and consumed with
``iter_batches(batch_size=32, batch_format="numpy")`` on the driver:

  spdl_rs           spdl_rs.ray.read_images(paths, size=(224, 224)) (num_threads=0:
                    every core per task): 64-image blocks decoded natively (DCT-domain
                    downscale, bilinear resize), GIL released.
  read_images       ray.data.read_images(paths, size=(224, 224), mode="RGB"): Pillow
                    decode and resize inside Ray's own image datasource.
  binary+Pillow     ray.data.read_binary_files(paths).map_batches(decode) with
                    decode = Image.open(BytesIO(b)).convert("RGB").resize((224, 224),
                    BILINEAR) per row, batch_format="numpy".

One Ray cluster (``ray.init(num_cpus=--cpus)``) serves every contender; each runs one
untimed warm-up pass, then --rounds timed passes in a new random order each round.
Reported: median seconds, rows/s, speed-up (peer median / spdl_rs median) and CPU
seconds per row (this process and every descendant: raylet, workers).
Writes bench-out/python/ray_data.json and prints a markdown table.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from e2e_torch import CpuMeter, make_images  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench-out" / "python"
SIZE = (224, 224)


def consume(ds) -> int:
    rows = 0
    for batch in ds.iter_batches(batch_size=32, batch_format="numpy"):
        image = batch["image"]
        assert image.shape[1:] == (SIZE[1], SIZE[0], 3), image.shape
        rows += len(image)
    return rows


def spdl_rs_pass(paths):
    from spdl_rs import ray as sray

    return consume(sray.read_images(paths, size=SIZE))


def read_images_pass(paths):
    import ray.data

    return consume(ray.data.read_images(paths, size=(SIZE[1], SIZE[0]), mode="RGB"))


def pillow_decode(batch):
    from PIL import Image

    out = [np.asarray(Image.open(io.BytesIO(b)).convert("RGB").resize(SIZE, Image.BILINEAR)) for b in batch["bytes"]]
    return {"image": np.stack(out)}


def binary_pillow_pass(paths):
    import ray.data

    return consume(ray.data.read_binary_files(paths).map_batches(pillow_decode, batch_format="numpy"))


CONTENDERS = {"spdl_rs": spdl_rs_pass, "read_images": read_images_pass, "binary+Pillow": binary_pillow_pass}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--count", type=int, default=1024)
    ap.add_argument("--cpus", type=int, default=os.cpu_count())
    ap.add_argument("--images", type=Path, default=ROOT / "bench-out" / "images" / "e2e")
    args = ap.parse_args()
    paths = make_images(args.images, args.count)[: args.count]
    for p in paths:  # into the page cache
        Path(p).read_bytes()

    import ray
    import ray.data

    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    times: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    cpu: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    for name, run in CONTENDERS.items():
        assert run(paths) == len(paths), name  # warm-up: workers started, code loaded
    rng = random.Random(7)
    for _ in range(args.rounds):
        order = list(CONTENDERS)
        rng.shuffle(order)
        for name in order:
            with CpuMeter() as meter:
                t0 = time.perf_counter()
                rows = CONTENDERS[name](paths)
                times[name].append(time.perf_counter() - t0)
            assert rows == len(paths), name
            cpu[name].append(meter.cpu / rows)
    ray.shutdown()

    base = statistics.median(times["spdl_rs"])
    result = {
        "machine": f"{platform.node()} ({os.cpu_count()} CPUs), Ray num_cpus={args.cpus}",
        "images": len(paths),
        "versions": {"ray": ray.__version__, "python": platform.python_version()},
        "rows": {},
    }
    print(f"| contender | median s | rows/s | speed-up of spdl_rs | CPU ms/row |\n|---|---|---|---|---|")
    for name in CONTENDERS:
        med = statistics.median(times[name])
        row = {"median_s": med, "rows_per_s": len(paths) / med, "speedup": med / base,
               "cpu_ms_per_row": 1e3 * statistics.median(cpu[name]), "times": times[name]}
        result["rows"][name] = row
        print(f"| {name} | {med:.2f} | {row['rows_per_s']:.0f} | {row['speedup']:.2f}x | {row['cpu_ms_per_row']:.2f} |")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "ray_data.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
