#!/usr/bin/env python3
"""NPY/NPZ loading: spdl_rs.io.load_npy / load_npz against numpy.load, side by side
in interleaved rounds (issue 20).

    .venv-test/bin/python benches/python/npz_load.py --rounds 7

Files (written to bench-out/npz on the first run): one 96 MB float32 .npy, and
.npz archives of 32 arrays of 3 MB (float32 features, int64 labels), stored and
deflated. Reported: median ms per load and numpy time / spdl_rs time.
"""
import argparse
import random
import statistics
import time
from pathlib import Path

import numpy as np

import spdl_rs.io as sio

OUT = Path(__file__).resolve().parents[2] / "bench-out" / "npz"


def files():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    npy = OUT / "big.npy"
    if not npy.exists():
        np.save(npy, rng.standard_normal((24, 1024, 1024), dtype=np.float32))
    arrays = {f"f{i}": rng.standard_normal((768, 1024), dtype=np.float32) for i in range(32)}
    arrays["labels"] = np.arange(100_000, dtype=np.int64)
    for name, save in [("stored.npz", np.savez), ("deflated.npz", np.savez_compressed)]:
        if not (OUT / name).exists():
            save(OUT / name, **arrays)
    return {"npy 96 MB": npy, "npz stored": OUT / "stored.npz", "npz deflated": OUT / "deflated.npz"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    print("| file | spdl_rs ms | numpy ms | numpy / spdl_rs |")
    print("|---|---|---|---|")
    for label, path in files().items():
        if path.suffix == ".npy":
            fns = {"spdl_rs": lambda: sio.load_npy(path), "numpy": lambda: np.load(path)}
        else:
            fns = {"spdl_rs": lambda: sio.load_npz(path), "numpy": lambda: dict(np.load(path).items())}
        times = {k: [] for k in fns}
        for f in fns.values():
            f()
        for _ in range(args.rounds):
            for k in random.sample(list(fns), len(fns)):
                t = time.perf_counter()
                fns[k]()
                times[k].append(time.perf_counter() - t)
        ours, theirs = (statistics.median(times[k]) * 1e3 for k in ("spdl_rs", "numpy"))
        print(f"| {label} | {ours:.1f} | {theirs:.1f} | {theirs / ours:.2f}x |")


if __name__ == "__main__":
    main()
