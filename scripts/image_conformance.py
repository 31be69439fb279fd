#!/usr/bin/env python3
"""Image conformance: every file of a folder through spdl_rs.io.load_image and
Pillow, with a table per format of how they agree.

    .venv-test/bin/python scripts/image_conformance.py DIR [--json out.json] [--list]

Pillow's view of a file: ``ImageOps.exif_transpose(im).convert("RGB")`` of its
first frame (16-bit and 32-bit gray to their high byte first, as spdl_rs's 8-bit
output does; Pillow's own conversion clips them). spdl_rs's view:
``load_image(path)`` (RGB, orientation applied). Each file is counted once:

- ``same``: both decode; equal pixels (lossless formats) or PSNR >= 40 dB (JPEG,
  lossy WebP, AVIF/HEIF, and anything Pillow decodes through a lossy codec,
  JPEG-compressed TIFF included);
- ``different``: both decode to other pixels or another size (PSNR listed);
- ``refused``: Pillow decodes, spdl_rs returns an error;
- ``extra``: spdl_rs decodes a file Pillow refuses;
- ``both refuse``;
- ``crashed``: the process decoding it with spdl_rs died (a crash is a bug
  whatever the file).

Files are decoded by a worker process; when it dies the file it was on is
``crashed`` and a new worker goes on with the next. The summary line gives the
share of Pillow-decoded files spdl_rs decodes to Pillow's pixels.
"""
from __future__ import annotations

import argparse
import collections
import json
import math
import os
import subprocess
import sys
from pathlib import Path

LOSSY = {"JPEG", "MPO", "AVIF", "HEIF", "JPEG2000"}


def pillow_rgb(path: str):
    import numpy as np
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        fmt = im.format or "?"
        im.seek(0)
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
            arr = (np.asarray(im, dtype=np.uint16) >> 8).astype(np.uint8)
            return fmt, np.stack([arr] * 3, axis=-1)
        if im.mode == "I":
            arr = (np.asarray(im, dtype=np.int64).clip(0, 65535) >> 8).astype(np.uint8)
            return fmt, np.stack([arr] * 3, axis=-1)
        info = getattr(im, "info", {})
        lossy = (fmt == "WEBP" and info.get("lossless") is False) or (
            fmt == "TIFF" and info.get("compression") in ("jpeg", "tiff_jpeg")
        )
        return (fmt + ("-lossy" if lossy else "")), np.asarray(im.convert("RGB"))


def psnr(a, b) -> float:
    import numpy as np

    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def judge(path: str) -> dict:
    """One file's row (run in the worker)."""
    from spdl_rs import io as sio

    row = {"file": path}
    try:
        row["format"], want = pillow_rgb(path)
    except Exception as e:  # noqa: BLE001
        row["format"], want, row["pillow_error"] = Path(path).suffix.lstrip(".").upper() or "?", None, str(e)[:200]
    try:
        got = sio.load_image(path)
    except Exception as e:  # noqa: BLE001
        got, row["spdl_error"] = None, str(e)[:300]
    if want is None:
        row["verdict"] = "both refuse" if got is None else "extra"
    elif got is None:
        row["verdict"] = "refused"
    elif got.shape != want.shape:
        row["verdict"], row["detail"] = "different", f"shape {got.shape} vs Pillow {want.shape}"
    else:
        quality = psnr(got, want)
        lossy = row["format"].split("-")[0] in LOSSY or row["format"].endswith("-lossy")
        same = quality == math.inf or (lossy and quality >= 40)
        row["verdict"], row["psnr"] = ("same" if same else "different"), quality
    return row


def worker() -> None:
    for line in sys.stdin:
        print(json.dumps(judge(line.rstrip("\n"))), flush=True)


def run_all(files: list[str]) -> list[dict]:
    rows, i = [], 0
    while i < len(files):
        proc = subprocess.Popen([sys.executable, __file__, "--worker"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        while i < len(files):
            proc.stdin.write(files[i] + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
            if not line:  # the worker died on this file
                proc.wait()
                rows.append({"file": files[i], "format": Path(files[i]).suffix.lstrip(".").upper(),
                             "verdict": "crashed", "detail": f"exit code {proc.returncode}"})
                i += 1
                break
            rows.append(json.loads(line))
            i += 1
        else:
            proc.stdin.close()
            proc.wait()
    return rows


def report(rows: list[dict], listing: bool) -> str:
    verdicts = ["same", "different", "refused", "extra", "both refuse", "crashed"]
    by_format: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in rows:
        by_format[r["format"].split("-")[0]][r["verdict"]] += 1
    lines = ["| format | files | " + " | ".join(verdicts) + " |", "|---" * (len(verdicts) + 2) + "|"]
    for fmt in sorted(by_format, key=lambda f: -sum(by_format[f].values())):
        c = by_format[fmt]
        lines.append(f"| {fmt} | {sum(c.values())} | " + " | ".join(str(c[v] or "") for v in verdicts) + " |")
    total = collections.Counter(r["verdict"] for r in rows)
    pillow_ok = total["same"] + total["different"] + total["refused"] + total["crashed"]
    lines.append(f"| all | {len(rows)} | " + " | ".join(str(total[v]) for v in verdicts) + " |")
    share = 100 * total["same"] / max(1, pillow_ok)
    lines.append(f"\nOf {pillow_ok} files Pillow decodes, spdl_rs gives Pillow's pixels for {total['same']} "
                 f"({share:.1f}%); crashes: {total['crashed']}.")
    if listing:
        lines.append("")
        for r in sorted(rows, key=lambda r: (r["verdict"], r["format"], r["file"])):
            if r["verdict"] in ("different", "refused", "crashed"):
                why = r.get("detail") or (f"PSNR {r['psnr']:.1f} dB" if "psnr" in r else r.get("spdl_error", ""))
                lines.append(f"- {r['verdict']} {r['format']} {os.path.basename(r['file'])}: {why}")
    return "\n".join(lines)


def main() -> int:
    if sys.argv[1:] == ["--worker"]:
        worker()
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", type=Path)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--list", action="store_true", help="list every file that differs, is refused or crashed")
    args = ap.parse_args()
    files = sorted(str(p) for p in args.folder.rglob("*") if p.is_file())
    rows = run_all(files)
    print(report(rows, args.list))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
