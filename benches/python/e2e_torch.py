#!/usr/bin/env python3
"""End to end, JPEG paths -> decoded -> 224x224 -> batches of 32 -> torch tensors, one epoch.

    bash benches/python/run_torch.sh                      # venv (.venv-torch) + this script
    PYTHONPATH=spdl-python/python .venv-torch/bin/python benches/python/e2e_torch.py \\
        --rounds 3 --threads 1 2

Contenders, each over the same file list, at t = 1 and 2 workers:

  spdl_rs          PipelineBuilder().add_source(paths).decode_image(size=(224, 224),
                   concurrency=t).aggregate(32).collate().build(num_threads=t), each
                   batch through spdl_rs.torch.to_torch (zero copy). Built and run
                   inside the timed epoch.
  spdl_rs+DL0      the same pipeline through spdl_rs.torch.PipelineDataset and
                   DataLoader(batch_size=None, num_workers=0): the adapter's overhead.
  DataLoader       torch.utils.data.DataLoader(map-style Dataset, batch_size=32,
                   num_workers=t, persistent_workers=True); __getitem__ =
                   Image.open(p).convert("RGB").resize((224, 224), BILINEAR) ->
                   torch.from_numpy(np.array(img)) (as torchvision's pil_to_tensor);
                   default_collate stacks the batch in the worker.
  DataLoader+draft as DataLoader, plus img.draft("RGB", (224, 224)) before convert:
                   libjpeg DCT-domain downscale by the largest power of two keeping
                   both sides >= 224, which spdl_rs's decode_image also does (its
                   dct_scaling); the plain DataLoader row decodes every pixel.
  SPDL 0.8         spdl.pipeline.PipelineBuilder().add_source(paths).pipe(decode,
                   concurrency=t).aggregate(32).pipe(convert).add_sink()
                   .build(num_threads=t), decode = spdl.io.demux_image +
                   decode_packets(filter_desc="scale=w=224:h=224:flags=bilinear,
                   format=pix_fmts=rgb24"), convert = spdl.io.to_torch(
                   spdl.io.convert_frames(frames)): load_image_batch's body, driven
                   by SPDL's own executor. Built and run inside the timed epoch.

Every contender runs one untimed warm-up epoch per thread count (libraries loaded,
DataLoader workers started), then --rounds timed epochs, the contenders in a new
random order each round, so machine noise spreads over all of them. Files are in the
page cache (read once beforehand). Reported: the median seconds per epoch (and the
range), images/s, speed-up = peer median / spdl_rs median (> 1: spdl_rs faster), and
CPU seconds per image: getrusage(RUSAGE_SELF) + getrusage(RUSAGE_CHILDREN) deltas plus
the /proc CPU-time deltas of live child processes (persistent DataLoader workers never
exit during an epoch, so RUSAGE_CHILDREN alone would miss them).

Images: --images (default bench-out/images/e2e). When it holds fewer than --count
JPEGs, --count (1024) are made there: the content recipe of benches/make_images.py
(1/f colour noise + shapes + texture, seeded), sizes 500x375 to 1024x768 in both
orientations (ImageNet-like, mostly 500x375), Pillow quality 90, 4:2:0.

Writes bench-out/python/e2e_torch.json and prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench-out" / "python"
SIZE = 224
BATCH = 32

# (width, height, weight): 500x375 ... 1024x768, both orientations.
E2E_SIZES = [
    (500, 375, 40), (375, 500, 12), (500, 333, 6), (333, 500, 3), (500, 400, 5),
    (500, 377, 4), (640, 480, 10), (480, 640, 4), (800, 600, 7), (600, 800, 3),
    (1024, 768, 4), (768, 1024, 2),
]


# --------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------

def make_images(out: Path, count: int) -> list[str]:
    from PIL import Image

    sys.path.insert(0, str(ROOT / "benches"))
    from make_images import synth_image

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20250101)
    wts = np.array([w for *_, w in E2E_SIZES], np.float64)
    idx = rng.choice(len(E2E_SIZES), size=count, p=wts / wts.sum())
    t0 = time.perf_counter()
    for i, k in enumerate(idx):
        p = out / f"{i:04d}.jpg"
        if p.exists():
            continue
        w, h, _ = E2E_SIZES[k]
        tmp = p.with_suffix(".tmp")
        Image.fromarray(synth_image(700000 + i, w, h), "RGB").save(
            tmp, "JPEG", quality=90, subsampling=2, optimize=False, progressive=False)
        tmp.replace(p)
        if i % 128 == 127:
            print(f"[e2e_torch] made {i + 1}/{count} images ({time.perf_counter() - t0:.0f} s)",
                  file=sys.stderr)
    return sorted(str(p) for p in out.glob("*.jpg"))


# --------------------------------------------------------------------------
# CPU accounting
# --------------------------------------------------------------------------

_TCK = os.sysconf("SC_CLK_TCK")


def _descendant_cpu() -> dict[int, float]:
    """{pid: utime+stime seconds} of every live descendant (from /proc/*/stat)."""
    parent, cpu = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        fields = s[s.rindex(")") + 2:].split()
        parent[int(d)] = int(fields[1])
        cpu[int(d)] = (int(fields[11]) + int(fields[12])) / _TCK
    me, out, frontier = os.getpid(), {}, {os.getpid()}
    while frontier:
        nxt = {p for p, pp in parent.items() if pp in frontier and p != me and p not in out}
        for p in nxt:
            out[p] = cpu[p]
        frontier = nxt
    return out


def _rusage() -> float:
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


class CpuMeter:
    def __enter__(self):
        self.r0, self.k0 = _rusage(), _descendant_cpu()
        return self

    def __exit__(self, *exc):
        r1, k1 = _rusage(), _descendant_cpu()
        live = sum(k1[p] - self.k0.get(p, 0.0) for p in k1)
        # A child that exited in between is in RUSAGE_CHILDREN with its whole life.
        gone = sum(v for p, v in self.k0.items() if p not in k1)
        self.cpu = (r1 - self.r0) + live - gone
        return False


# --------------------------------------------------------------------------
# Contenders: each factory returns epoch() -> number of images, all as torch tensors.
# --------------------------------------------------------------------------

def check_batch(b, torch) -> int:
    assert isinstance(b, torch.Tensor) and b.dtype == torch.uint8, type(b)
    assert tuple(b.shape[1:]) == (SIZE, SIZE, 3), tuple(b.shape)
    return b.shape[0]


def spdl_rs_contender(paths, t):
    import torch

    from spdl_rs.pipeline import PipelineBuilder
    from spdl_rs.torch import to_torch

    def epoch():
        pipeline = (PipelineBuilder().add_source(paths)
                    .decode_image(size=(SIZE, SIZE), concurrency=t)
                    .aggregate(BATCH).collate().add_sink(4).build(num_threads=t))
        run = pipeline.run()
        n = sum(check_batch(to_torch(b), torch) for b in run)
        assert not run.failures(), run.failures()[:3]
        return n
    return epoch, None


def _build_spdl_rs(t):
    from spdl_rs.pipeline import PipelineBuilder

    def build(share):
        return (PipelineBuilder().add_source(share)
                .decode_image(size=(SIZE, SIZE), concurrency=t)
                .aggregate(BATCH).collate().add_sink(4).build(num_threads=t))
    return build


def spdl_rs_dl0_contender(paths, t):
    import torch
    from torch.utils.data import DataLoader

    from spdl_rs.torch import PipelineDataset

    loader = DataLoader(PipelineDataset(paths, _build_spdl_rs(t), distributed=False),
                        batch_size=None, num_workers=0)

    def epoch():
        return sum(check_batch(b, torch) for b in loader)
    return epoch, None


class PillowDataset:
    """Map-style dataset: the usual torchvision-free Pillow path."""

    def __init__(self, paths, draft: bool):
        self.paths, self.draft = paths, draft

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        import torch
        from PIL import Image

        with Image.open(self.paths[i]) as im:
            if self.draft:
                im.draft("RGB", (SIZE, SIZE))
            img = im.convert("RGB").resize((SIZE, SIZE), Image.BILINEAR)
        return torch.from_numpy(np.array(img))


def dataloader_contender(paths, t, draft=False):
    import torch
    from torch.utils.data import DataLoader

    loader = DataLoader(PillowDataset(paths, draft), batch_size=BATCH, num_workers=t,
                        persistent_workers=True)

    def epoch():
        return sum(check_batch(b, torch) for b in loader)

    def close():
        it = getattr(loader, "_iterator", None)
        if it is not None:
            it._shutdown_workers()
    return epoch, close


def spdl08_contender(paths, t):
    import spdl.io
    import torch
    from spdl.pipeline import PipelineBuilder

    fdesc = spdl.io.get_video_filter_desc(scale_width=SIZE, scale_height=SIZE, scale_mode=None,
                                          scale_algo="bilinear", pix_fmt="rgb24")

    def decode(p):
        return spdl.io.decode_packets(spdl.io.demux_image(p), filter_desc=fdesc)

    def convert(frames):
        return spdl.io.to_torch(spdl.io.convert_frames(frames))

    def epoch():
        pipeline = (PipelineBuilder().add_source(paths).pipe(decode, concurrency=t)
                    .aggregate(BATCH).pipe(convert).add_sink(4).build(num_threads=t))
        with pipeline.auto_stop():
            return sum(check_batch(b, torch) for b in pipeline)
    return epoch, None


CONTENDERS = {
    "spdl_rs": spdl_rs_contender,
    "spdl_rs+DL0": spdl_rs_dl0_contender,
    "DataLoader": dataloader_contender,
    "DataLoader+draft": lambda p, t: dataloader_contender(p, t, draft=True),
    "SPDL 0.8": spdl08_contender,
}


def quality_check(paths) -> dict:
    """Mean absolute difference (0-255) of each contender's 224x224 output vs Pillow's
    full-resolution BILINEAR resize, over the first 16 images: the same work."""
    import spdl.io
    from PIL import Image

    import spdl_rs.io as rio

    ps = paths[:16]
    ref = np.stack([np.array(Image.open(p).convert("RGB").resize((SIZE, SIZE), Image.BILINEAR)) for p in ps])
    draft = PillowDataset(ps, True)
    fdesc = spdl.io.get_video_filter_desc(scale_width=SIZE, scale_height=SIZE, scale_mode=None,
                                          scale_algo="bilinear", pix_fmt="rgb24")
    outs = {
        "spdl_rs": rio.load_image_batch(ps, size=(SIZE, SIZE)),
        "DataLoader+draft": np.stack([draft[i].numpy() for i in range(len(ps))]),
        "SPDL 0.8": spdl.io.to_numpy(spdl.io.convert_frames(
            [spdl.io.decode_packets(spdl.io.demux_image(p), filter_desc=fdesc) for p in ps])),
    }
    return {k: round(float(np.abs(v.astype(np.int16) - ref).mean()), 2) for k, v in outs.items()}


def versions() -> dict:
    import importlib.metadata as md
    out = {"python": platform.python_version(), "cpus": os.cpu_count(),
           "cpu": next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")}
    for p in ("torch", "numpy", "pillow", "spdl", "spdl-io", "spdl-core"):
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            out[p] = None
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, default=ROOT / "bench-out" / "images" / "e2e")
    ap.add_argument("--count", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=list(CONTENDERS))
    ap.add_argument("--json", type=Path, default=OUT / "e2e_torch.json")
    ap.add_argument("--seed", type=int, default=0, help="order of contenders in each round")
    a = ap.parse_args()

    paths = sorted(str(p) for p in a.images.glob("*.jpg")) if a.images.is_dir() else []
    if len(paths) < a.count:
        paths = make_images(a.images, a.count)
    paths = paths[:a.count]
    nbytes = 0
    for p in paths:  # into the page cache
        with open(p, "rb") as f:
            nbytes += len(f.read())
    print(f"[e2e_torch] {len(paths)} JPEGs, {nbytes / len(paths) / 1e3:.0f} KB average, {a.images}",
          file=sys.stderr)

    import torch
    torch.set_num_threads(1)  # the main process only stacks/receives; no intra-op pool fights the workers

    rng = random.Random(a.seed)
    results = []  # one row per (threads, contender)
    load0 = os.getloadavg()
    for t in a.threads:
        epochs, closers = {}, []
        for name in a.contenders:
            epoch, close = CONTENDERS[name](paths, t)
            n = epoch()  # warm-up epoch
            assert n == len(paths), (name, n)
            epochs[name] = epoch
            if close:
                closers.append(close)
        times = {k: [] for k in epochs}
        cpus = {k: [] for k in epochs}
        for r in range(a.rounds):
            order = list(epochs)
            rng.shuffle(order)
            for name in order:
                with CpuMeter() as m:
                    t0 = time.perf_counter()
                    n = epochs[name]()
                    dt = time.perf_counter() - t0
                assert n == len(paths), (name, n)
                times[name].append(dt)
                cpus[name].append(m.cpu)
                print(f"[e2e_torch] t={t} round {r} {name}: {dt:.2f} s, {m.cpu:.2f} CPU s", file=sys.stderr)
        for close in closers:
            close()
        for name in epochs:
            results.append({
                "threads": t, "contender": name, "images": len(paths),
                "times_s": times[name], "cpu_s": cpus[name],
                "median_s": statistics.median(times[name]),
                "cpu_ms_per_image": 1e3 * statistics.median(cpus[name]) / len(paths),
            })
    load1 = os.getloadavg()

    quality = quality_check(paths)
    meta = {"versions": versions(), "rounds": a.rounds, "images": len(paths),
            "avg_kb": round(nbytes / len(paths) / 1e3, 1), "loadavg_before": load0,
            "loadavg_after": load1, "mean_abs_diff_vs_pillow_full_bilinear": quality}
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps({"meta": meta, "results": results}, indent=1))

    lines = [
        f"{len(paths)} JPEGs ({meta['avg_kb']:.0f} KB avg) -> 224x224 RGB -> batches of {BATCH} -> "
        f"torch.uint8 (32,224,224,3); median of {a.rounds} interleaved epochs; "
        f"speed-up = peer median / spdl_rs median (> 1: spdl_rs faster)",
        "",
        "| workers | contender | s/epoch (min-max) | images/s | spdl_rs speed-up | CPU ms/image |",
        "|---|---|---|---|---|---|",
    ]
    for t in a.threads:
        rows = [r for r in results if r["threads"] == t]
        base = next((r["median_s"] for r in rows if r["contender"] == "spdl_rs"), None)
        for r in rows:
            sp = f"{r['median_s'] / base:.2f}x" if base and r["contender"] != "spdl_rs" else "-"
            lines.append(
                f"| {t} | {r['contender']} | {r['median_s']:.2f} ({min(r['times_s']):.2f}-{max(r['times_s']):.2f}) "
                f"| {len(paths) / r['median_s']:.0f} | {sp} | {r['cpu_ms_per_image']:.2f} |")
    lines += ["", f"Mean |difference| (0-255) vs Pillow full-resolution BILINEAR on 16 images: "
              + ", ".join(f"{k} {v}" for k, v in quality.items()),
              f"Load average before/after: {load0[0]:.2f} / {load1[0]:.2f}; "
              f"{meta['versions']['cpus']} CPUs ({meta['versions']['cpu']}); torch {meta['versions']['torch']}, "
              f"Pillow {meta['versions']['pillow']}, SPDL {meta['versions']['spdl']}"]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
