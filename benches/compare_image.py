#!/usr/bin/env python3
"""Side-by-side image decode benchmark: spdl-rs vs Pillow, OpenCV, simplejpeg,
PyTurboJPEG and SPDL 0.8.

Usage (from the repo root)::

    bash benches/setup_python.sh                     # .venv-bench (pinned peers)
    .venv-bench/bin/python benches/make_images.py    # bench-out/images/{jpeg,png}/
    .venv-bench/bin/python benches/compare_image.py --repeat 5 --json bench-out/compare_image.json

Every (workload, threads, contender) cell runs in its own fresh subprocess. The
contender decodes the whole file set once untimed (warm-up: libraries loaded,
thread pool started, allocator warm), then ``--repeat`` timed passes over the
whole set, and reports one JSON line. The table shows the median wall time of
a pass, images/s, the median CPU time (user+sys, all threads) per pass, the
process peak RSS and the speed-up of spdl-rs over each peer (peer median /
spdl-rs median; > 1 means spdl-rs is faster). Files are read inside the timed
region (from the page cache: the driver reads every file once beforehand).

Contender protocol (what ``--spdl-rs-cmd`` must implement)::

    CMD --list FILE_LIST --workload native|resize224|png --threads N --repeat R

FILE_LIST is a text file with one image path per line (the driver writes
bench-out/images/jpeg_list.txt and png_list.txt). CMD prints exactly one JSON
line on stdout::

    {"impl":"spdl-rs","workload":"native","threads":1,"images":240,"times_s":[...],"peak_rss_kb":K}

Optional keys the driver uses when present: "cpu_times_s", "sys_times_s"
(per-pass CPU seconds, all threads), "shapes" (native/png: [h,w,c] of every
image in list order; resize224: shape of every batch). Without cpu_times_s
the driver estimates CPU from the child's rusage (marked ~ in the table).

Workloads (``images`` = number of decoded images per pass):
  native     every JPEG -> native-size RGB uint8 HWC array, kept until the end of
             the pass (like a loader handing arrays on).
  resize224  every JPEG -> 224x224 RGB (stretched, aspect not kept), stacked in
             batches of --batch (32) into (B,224,224,3) uint8; the last partial
             batch too. Peers that can downscale in the DCT domain do so to the
             smallest power-of-two reduction (1/2, 1/4, 1/8) that keeps BOTH sides
             >= 224 (Pillow ``draft`` rule: w >= 224*f and h >= 224*f), then an
             antialiased resize to 224x224. See CONTENDER_NOTES below.
  png        every PNG -> native-size RGB uint8 (Pillow, OpenCV, SPDL, spdl-rs).

Threads (``--threads 1,2``): threads=1 is a plain loop in the calling thread.
threads=N>1 uses one ``concurrent.futures.ThreadPoolExecutor(max_workers=N)``
per process (created before the warm-up, reused), mapping the per-image
function over the file list in order; batches are stacked in the calling
thread as results arrive. OpenCV's own thread pool is disabled
(``cv2.setNumThreads(1)``) wherever cv2 is used, so N is the only parallelism.
SPDL: ``spdl.io.load_image_batch`` has NO thread/executor parameter (SPDL 0.8:
a plain Python loop over ``srcs`` calling ``demux_image`` + ``decode_packets``,
then one ``convert_frames``; those calls release the GIL). SPDL's own answer to
parallelism is the executor of ``spdl.pipeline`` (``PipelineBuilder.pipe(op,
concurrency=N)`` + ``build(num_threads=N)``), measured as ``spdl-pipeline``.
The ``spdl`` contender runs load_image_batch's exact body with the per-image
demux+decode fanned out over the same ThreadPoolExecutor as the peers (at
threads=1 it calls ``spdl.io.load_image_batch`` itself).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import struct
import sys
import time
from pathlib import Path

import bench_common
from bench_common import peak_rss_kb, run_child, run_child_rusage

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_IMAGES = ROOT / "bench-out" / "images"
_VENV_PY = ROOT / ".venv-bench" / "bin" / "python"
DEFAULT_PYTHON = str(_VENV_PY) if _VENV_PY.exists() else sys.executable

WORKLOADS = ("native", "resize224", "png")
CONTENDERS = ("spdl-rs", "pillow", "pillow-draft", "opencv", "simplejpeg", "turbojpeg",
              "spdl", "spdl-lowres", "spdl-pipeline")
EXTRA_CONTENDERS = ("simplejpeg-m8",)  # valid, not run by default
RESIZE = 224

# Which contenders make sense for which workload.
APPLIES = {
    "native": {"spdl-rs", "pillow", "opencv", "simplejpeg", "turbojpeg", "spdl", "spdl-pipeline"},
    "resize224": set(CONTENDERS) | set(EXTRA_CONTENDERS),
    "png": {"spdl-rs", "pillow", "opencv", "spdl", "spdl-pipeline"},
}

CONTENDER_NOTES = {
    "pillow": "Image.open(path).convert('RGB') -> np.asarray; resize224: full-size decode, then "
              "Image.resize((224,224), BILINEAR) (Pillow's bilinear is antialiased: the triangle "
              "filter support widens with the downscale factor); batches via np.stack",
    "pillow-draft": "as pillow, but im.draft('RGB', (224,224)) first: libjpeg DCT-domain "
                    "1/2, 1/4 or 1/8 keeping both sides >= 224, then the same BILINEAR resize",
    "opencv": "bytes read in Python, cv2.imdecode(np.frombuffer(buf), IMREAD_COLOR_RGB) (decoder "
              "emits RGB directly; bit-identical to IMREAD_COLOR + cvtColor(BGR2RGB), which "
              "--opencv-bgr selects); default flags otherwise, i.e. EXIF orientation honoured "
              "(the test images carry no EXIF). resize224: size from a pure-Python SOF parse, "
              "IMREAD_REDUCED_COLOR_{2,4,8} (same rule), then cv2.resize(INTER_AREA); "
              "cv2.setNumThreads(1)",
    "simplejpeg": "decode_jpeg(buf, 'RGB') (fastdct/fastupsample off); resize224: size from "
                  "decode_jpeg_header, min_width/min_height = ceil(w/f), ceil(h/f) so libjpeg-turbo "
                  "uses exactly the power-of-two scale f of the others, then cv2.resize(INTER_AREA)",
    "simplejpeg-m8": "simplejpeg with min_width=min_height=224: libjpeg-turbo picks the smallest "
                     "M/8 scale keeping both sides >= 224 (e.g. 5/8 for 500x375), i.e. it decodes "
                     "fewer pixels than the power-of-two peers; then cv2.resize(INTER_AREA)",
    "turbojpeg": "PyTurboJPEG 1.x (ctypes -> system libturbojpeg) decode(buf, TJPF_RGB), "
                 "default flags (accurate IDCT, fancy upsampling); resize224: decode_header, "
                 "scaling_factor=(1,f) (same rule), then cv2.resize(INTER_AREA)",
    "spdl": "native/png: spdl.io.load_image(path, filter_desc='format=pix_fmts=rgb24') -> "
            "to_numpy. resize224: load_image_batch body (demux_image + decode_packets with "
            "filter 'scale=w=224:h=224:flags=bilinear,format=pix_fmts=rgb24', i.e. "
            "get_video_filter_desc(scale_mode=None, scale_algo='bilinear'), then one "
            "convert_frames per batch -> (B,224,224,3)); NO DCT downscale (load_image_batch "
            "cannot take a per-image decoder option). NB: load_image_batch's default filter "
            "would pad to keep the aspect ratio and use bicubic",
    "spdl-lowres": "as spdl resize224, plus decode_config(decoder_options={'lowres': k}) per "
                   "image (k from ImagePackets.width/height, same power-of-two rule): FFmpeg's "
                   "mjpeg decoder IDCT-downscales, the scale filter re-initialises on the smaller "
                   "frame",
    "spdl-pipeline": "same per-image calls as spdl, driven by SPDL's own executor: "
                     "PipelineBuilder().add_source(paths).pipe(decode, concurrency=N, "
                     "output_order='input')[.aggregate(B).pipe(convert_frames)].add_sink() "
                     ".build(num_threads=N); pipeline built and started inside the timed pass",
}


# --------------------------------------------------------------------------
# Header parsing (stdlib only; used by the driver for expected shapes and by
# the OpenCV worker to choose IMREAD_REDUCED_*).
# --------------------------------------------------------------------------

_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def jpeg_size(buf: bytes) -> tuple[int, int]:
    """(width, height) from the first SOFn marker."""
    if buf[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG")
    i, n = 2, len(buf)
    while i + 4 <= n:
        if buf[i] != 0xFF:
            raise ValueError(f"bad JPEG marker at {i}")
        m = buf[i + 1]
        if m == 0xFF:  # fill byte
            i += 1
            continue
        if m in (0x01,) or 0xD0 <= m <= 0xD8:
            i += 2
            continue
        seglen = (buf[i + 2] << 8) | buf[i + 3]
        if m in _SOF:
            h, w = struct.unpack(">HH", buf[i + 5:i + 9])
            return w, h
        i += 2 + seglen
    raise ValueError("no SOF marker")


def png_size(buf: bytes) -> tuple[int, int]:
    if buf[:8] != b"\x89PNG\r\n\x1a\n" or buf[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return struct.unpack(">II", buf[16:24])


def dct_factor(w: int, h: int, target: int = RESIZE) -> int:
    """Largest f in (1,2,4,8) with w >= target*f and h >= target*f (Pillow's draft rule).

    The reduced image is ceil(w/f) x ceil(h/f) in libjpeg(-turbo), OpenCV and
    FFmpeg's lowres, so every contender gets the same intermediate size.
    """
    f = 1
    while f < 8 and w >= target * 2 * f and h >= target * 2 * f:
        f *= 2
    return f


def read_list(path: str) -> list[str]:
    return [ln.strip() for ln in Path(path).read_text().splitlines() if ln.strip()]


# --------------------------------------------------------------------------
# Workers: each runs in its own process (python compare_image.py --worker X).
# --------------------------------------------------------------------------

def _read(p: str) -> bytes:
    with open(p, "rb") as f:
        return f.read()


def make_ops(impl: str, a):
    """Return (per_image(path) -> item, collate(list[item]) -> ndarray | None, extras)."""
    import numpy as np
    W = a.workload
    if W not in ("native", "resize224", "png"):
        raise SystemExit(f"unknown workload {W}")

    def stack(items):
        return np.stack(items)

    if impl in ("opencv", "simplejpeg", "simplejpeg-m8", "turbojpeg"):
        import cv2
        cv2.setNumThreads(1)

        def resize(img):
            return cv2.resize(img, (RESIZE, RESIZE), interpolation=cv2.INTER_AREA)

    if impl in ("pillow", "pillow-draft"):
        from PIL import Image

        def one(p):
            im = Image.open(p)
            if impl == "pillow-draft":
                im.draft("RGB", (RESIZE, RESIZE))
            im = im.convert("RGB")
            if W == "resize224":
                im = im.resize((RESIZE, RESIZE), Image.BILINEAR)
            return np.asarray(im)
        return one, (stack if W == "resize224" else None), {}

    if impl == "opencv":
        use_bgr = a.opencv_bgr or not hasattr(cv2, "IMREAD_COLOR_RGB")
        full = cv2.IMREAD_COLOR if use_bgr else cv2.IMREAD_COLOR_RGB
        reduced = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2,
                   4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}
        if not use_bgr:  # swap the BGR colour bit for the RGB one
            reduced = {k: (v & ~cv2.IMREAD_COLOR) | cv2.IMREAD_COLOR_RGB for k, v in reduced.items()}

        def one(p):
            buf = _read(p)
            flag = full
            if W == "resize224":
                flag = reduced[dct_factor(*jpeg_size(buf))]
            img = cv2.imdecode(np.frombuffer(buf, np.uint8), flag)
            if img is None:
                raise RuntimeError(f"cv2.imdecode failed: {p}")
            if use_bgr:
                img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            return resize(img) if W == "resize224" else img
        return one, (stack if W == "resize224" else None), {"opencv_flags": "BGR+cvtColor" if use_bgr
                                                           else "IMREAD_COLOR_RGB"}

    if impl in ("simplejpeg", "simplejpeg-m8"):
        import simplejpeg
        if W == "png":
            raise SystemExit("simplejpeg does not decode PNG")

        def one(p):
            buf = _read(p)
            if W != "resize224":
                return simplejpeg.decode_jpeg(buf, colorspace="RGB")
            if impl == "simplejpeg-m8":
                img = simplejpeg.decode_jpeg(buf, colorspace="RGB", min_height=RESIZE, min_width=RESIZE)
            else:
                w, h, _, _ = simplejpeg.decode_jpeg_header(buf)
                f = dct_factor(w, h)
                img = simplejpeg.decode_jpeg(buf, colorspace="RGB", min_height=-(-h // f),
                                             min_width=-(-w // f))
            return resize(img)
        return one, (stack if W == "resize224" else None), {}

    if impl == "turbojpeg":
        from turbojpeg import TJPF_RGB, TurboJPEG
        if W == "png":
            raise SystemExit("PyTurboJPEG does not decode PNG")
        tj = TurboJPEG()

        def one(p):
            buf = _read(p)
            if W != "resize224":
                return tj.decode(buf, pixel_format=TJPF_RGB)
            w, h, _, _ = tj.decode_header(buf)
            f = dct_factor(w, h)
            img = tj.decode(buf, pixel_format=TJPF_RGB, scaling_factor=(1, f) if f > 1 else None)
            return resize(img)
        return one, (stack if W == "resize224" else None), {}

    if impl in ("spdl", "spdl-lowres", "spdl-pipeline"):
        import spdl.io
        if W == "resize224":
            fdesc = spdl.io.get_video_filter_desc(scale_width=RESIZE, scale_height=RESIZE,
                                                  scale_mode=None, scale_algo="bilinear",
                                                  pix_fmt="rgb24")
        else:
            fdesc = spdl.io.get_video_filter_desc(pix_fmt="rgb24")  # "format=pix_fmts=rgb24"
        extras = {"filter_desc": fdesc}
        if W != "resize224":
            if impl == "spdl-lowres":
                raise SystemExit("spdl-lowres only applies to resize224")

            def one(p):
                return spdl.io.to_numpy(spdl.io.load_image(p, filter_desc=fdesc))
            return one, None, extras

        dcs = {k: spdl.io.decode_config(decoder_options={"lowres": str(k)}) for k in (1, 2, 3)}

        def one(p):
            pk = spdl.io.demux_image(p)
            dc = None
            if impl == "spdl-lowres":
                k = dct_factor(pk.width, pk.height).bit_length() - 1
                dc = dcs.get(k)
            return spdl.io.decode_packets(pk, decode_config=dc, filter_desc=fdesc)

        def collate(frames):
            return spdl.io.to_numpy(spdl.io.convert_frames(frames))
        if impl == "spdl":
            extras["load_image_batch_at_1_thread"] = True

            def batch_fn(paths):  # threads == 1: the library call itself
                return spdl.io.to_numpy(spdl.io.load_image_batch(
                    paths, width=RESIZE, height=RESIZE, filter_desc=fdesc))
            extras["batch_fn"] = batch_fn
        return one, collate, extras

    raise SystemExit(f"unknown contender {impl}")


def worker(impl: str, a) -> dict:
    import numpy as np
    from concurrent.futures import ThreadPoolExecutor

    paths = read_list(a.list)
    one, collate, extras = make_ops(impl, a)
    batch_fn = extras.pop("batch_fn", None)
    B = a.batch
    pool = ThreadPoolExecutor(max_workers=a.threads) if a.threads > 1 else None

    if impl == "spdl-pipeline":
        from spdl.pipeline import PipelineBuilder

        def run_once(ps):
            b = PipelineBuilder().add_source(ps).pipe(one, concurrency=a.threads, output_order="input")
            if collate is not None:
                b = b.aggregate(B).pipe(collate, output_order="input")
            pipeline = b.add_sink().build(num_threads=a.threads)
            with pipeline.auto_stop():
                return list(pipeline)
    elif batch_fn is not None and pool is None:
        def run_once(ps):
            return [batch_fn(ps[i:i + B]) for i in range(0, len(ps), B)]
    else:
        def run_once(ps):
            it = pool.map(one, ps) if pool is not None else map(one, ps)
            if collate is None:
                return list(it)
            out, cur = [], []
            for x in it:
                cur.append(x)
                if len(cur) == B:
                    out.append(collate(cur))
                    cur = []
            if cur:
                out.append(collate(cur))
            return out

    res = run_once(paths[:min(len(paths), 2 * B)])  # warm-up (untimed)
    res, times, cpus, syss = bench_common.timed_runs(lambda: run_once(paths), a.repeat)
    if pool is not None:
        pool.shutdown()
    arrs = [np.asarray(x) for x in res]
    for x in arrs:
        assert x.dtype == np.uint8, (impl, x.dtype)
    shapes = [list(x.shape) for x in arrs]
    images = sum(s[0] for s in shapes) if a.workload == "resize224" else len(shapes)
    if a.verify_out and a.verify_idx:
        idx = [int(i) for i in a.verify_idx.split(",")]
        if a.workload == "resize224":
            sel = {f"i{i}": arrs[i // B][i % B] for i in idx}
        else:
            sel = {f"i{i}": arrs[i] for i in idx}
        np.savez(a.verify_out, **sel)
    out = {"impl": impl, "workload": a.workload, "threads": a.threads, "images": images,
           "times_s": times, "cpu_times_s": cpus, "sys_times_s": syss, "shapes": shapes,
           "peak_rss_kb": peak_rss_kb()}
    out.update({k: v for k, v in extras.items() if isinstance(v, (str, int, float, bool))})
    return out


def worker_info(a) -> dict:
    import importlib.metadata as md
    info = {"python": sys.version.split()[0], "packages": {}, "libs": {}}
    for p in ("pillow", "opencv-python-headless", "simplejpeg", "PyTurboJPEG", "spdl", "spdl-io",
              "spdl-core", "numpy"):
        try:
            info["packages"][p] = md.version(p)
        except md.PackageNotFoundError:
            info["packages"][p] = None
    libs = info["libs"]
    try:
        from PIL import features
        libs["pillow_jpeg"] = (f"libjpeg-turbo {features.version('libjpeg_turbo')}"
                               if features.check_feature("libjpeg_turbo") else features.version("jpg"))
        libs["pillow_zlib"] = (f"zlib-ng {features.version('zlib_ng')}"
                               if features.check_feature("zlib_ng") else features.version("zlib"))
    except Exception as e:  # noqa: BLE001
        libs["pillow_error"] = repr(e)
    try:
        import cv2
        bi = cv2.getBuildInformation()
        for key in ("JPEG:", "PNG:"):
            line = next((ln.strip() for ln in bi.splitlines() if ln.strip().startswith(key)), None)
            libs[f"opencv_{key[:-1].lower()}"] = line.split(":", 1)[1].strip() if line else None
    except Exception as e:  # noqa: BLE001
        libs["opencv_error"] = repr(e)
    try:
        import turbojpeg
        turbojpeg.TurboJPEG()
    except Exception as e:  # noqa: BLE001
        libs["turbojpeg_error"] = repr(e)
    try:
        import spdl.io
        spdl.io.demux_image(a.file)  # forces the native extension (and libav*) to load
    except Exception as e:  # noqa: BLE001
        libs["spdl_error"] = repr(e)
    import re
    maps = Path("/proc/self/maps").read_text()
    for name in ("libturbojpeg", "libspdl_ffmpeg", "libavcodec"):
        m = re.search(rf"(/\S*{name}[^/\s]*\.so[.\d]*)", maps)
        libs[name] = os.path.realpath(m.group(1)) if m else None
    return info


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------

def psnr_mae(x, ref) -> tuple[float, float]:
    import numpy as np
    d = x.astype(np.float64) - ref.astype(np.float64)
    mse = float((d * d).mean())
    return (float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)), float(np.abs(d).mean())


def verify_outputs(vdir: Path, workloads: list[str], contenders: list[str], idx: dict) -> list[str]:
    """Compare each contender's saved sample outputs with Pillow's (reference)."""
    try:
        import numpy as np
    except ImportError:
        return ["numpy not importable in the driver; pixel comparison skipped"]
    msgs = []
    for w in workloads:
        ref_p = vdir / f"{w}-pillow.npz"
        if not ref_p.is_file():
            msgs.append(f"{w}: no Pillow reference saved (run with the pillow contender)")
            continue
        ref = np.load(ref_p)
        for impl in contenders:
            p = vdir / f"{w}-{impl}.npz"
            if impl == "pillow" or not p.is_file():
                continue
            got = np.load(p)
            same_shape, ps, maes = 0, [], []
            for k in ref.files:
                if k in got.files and got[k].shape == ref[k].shape:
                    same_shape += 1
                    pv, m = psnr_mae(got[k], ref[k])
                    ps.append(pv)
                    maes.append(m)
            msg = (f"{w} {impl}: {same_shape}/{len(ref.files)} sample images have Pillow's shape")
            if ps:
                msg += (f"; vs Pillow: min PSNR {min(ps):.1f} dB, mean |diff| "
                        f"{sum(maes) / len(maes):.2f} (max {max(maes):.2f}) /255")
            msgs.append(msg)
    return msgs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image-dir", type=Path, default=DEFAULT_IMAGES,
                    help="holds jpeg/*.jpg and png/*.png (benches/make_images.py)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--contenders", default=",".join(CONTENDERS),
                    help=f"comma-separated; also available: {','.join(EXTRA_CONTENDERS)}")
    ap.add_argument("--threads", default="1,2", help="decode threads (thread-pool size), comma-separated")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--batch", type=int, default=32, help="resize224 batch size")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N files of each set")
    ap.add_argument("--spdl-rs-cmd", default="", help="spdl-rs contender command (skipped if empty/missing)")
    ap.add_argument("--python", default=DEFAULT_PYTHON,
                    help="interpreter for the Python workers (default: .venv-bench/bin/python if present)")
    ap.add_argument("--opencv-bgr", action="store_true",
                    help="OpenCV: IMREAD_COLOR + cvtColor(BGR2RGB) instead of IMREAD_COLOR_RGB")
    ap.add_argument("--verify-images", type=int, default=6,
                    help="after timing, compare this many sample images (distinct sizes) of each "
                         "contender with Pillow's output (shape, PSNR); 0 = off")
    ap.add_argument("--timeout", type=float, default=600.0, help="per contender×cell, seconds")
    ap.add_argument("--json", type=Path, default=None, help="write full results here")
    # internal
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--list", help=argparse.SUPPRESS)
    ap.add_argument("--workload", help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    ap.add_argument("--verify-out", help=argparse.SUPPRESS)
    ap.add_argument("--verify-idx", help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.worker:
        if a.worker == "info":
            print(json.dumps(worker_info(a)), flush=True)
        else:
            a.threads = int(a.threads)
            print(json.dumps(worker(a.worker, a)), flush=True)
        return 0

    workloads = [w for w in a.workloads.split(",") if w]
    for w in workloads:
        if w not in WORKLOADS:
            ap.error(f"unknown workload {w}")
    contenders = [c for c in a.contenders.split(",") if c]
    for c in contenders:
        if c not in CONTENDERS and c not in EXTRA_CONTENDERS:
            ap.error(f"unknown contender {c}")
    threads = [int(t) for t in a.threads.split(",") if t]

    spdl_rs = shlex.split(a.spdl_rs_cmd)
    if "spdl-rs" in contenders:
        exe = spdl_rs[0] if spdl_rs else ""
        if not exe or not (shutil.which(exe) or (Path(exe).is_file() and os.access(exe, os.X_OK))):
            print(f"WARNING: spdl-rs command not given or not found ({a.spdl_rs_cmd!r}); skipping "
                  "spdl-rs. Build it with `cargo bench --bench image_decode --no-run` and pass the "
                  "executable (benches/run_image.sh does this).", file=sys.stderr)
            contenders.remove("spdl-rs")

    # File lists (absolute paths) + expected sizes from the headers.
    sets = {}
    for kind, pat in (("jpeg", "*.jpg"), ("png", "*.png")):
        files = sorted((a.image_dir / kind).glob(pat))
        if a.limit:
            files = files[:a.limit]
        sets[kind] = files
    need = {"png" if w == "png" else "jpeg" for w in workloads}
    for kind in need:
        if not sets[kind]:
            print(f"ERROR: no {kind} images in {a.image_dir / kind}; run "
                  ".venv-bench/bin/python benches/make_images.py", file=sys.stderr)
            return 2
    lists, sizes, vidx = {}, {}, {}
    for kind, files in sets.items():
        if not files:
            continue
        lp = a.image_dir / f"{kind}_list{'_' + str(a.limit) if a.limit else ''}.txt"
        lp.write_text("".join(f"{f.resolve()}\n" for f in files))
        lists[kind] = lp
        szs = []
        for f in files:  # also warms the page cache
            buf = f.read_bytes()
            szs.append(jpeg_size(buf) if kind == "jpeg" else png_size(buf))
        sizes[kind] = szs
        seen, pick = set(), []
        for i, s in enumerate(szs):  # first image of each distinct size
            if s not in seen:
                seen.add(s)
                pick.append(i)
        # ...then evenly spread extra ones when there are fewer distinct sizes
        k = min(a.verify_images, len(szs))
        extra = [i for i in sorted({round(j * (len(szs) - 1) / max(k - 1, 1)) for j in range(k)})
                 if i not in set(pick)]
        vidx[kind] = sorted((pick + extra)[:k])
    vdir = a.image_dir / "verify"
    if a.verify_images:
        vdir.mkdir(parents=True, exist_ok=True)
        for old in vdir.glob("*.npz"):
            old.unlink()

    me = [a.python, str(Path(__file__).resolve())]
    first = sets["jpeg"][0] if sets["jpeg"] else sets["png"][0]
    info, err, _ = run_child(me + ["--worker", "info", "--file", str(first)], a.timeout)
    if info is None:
        print(f"WARNING: could not collect Python package info: {err.strip()[:500]}", file=sys.stderr)
    meta = bench_common.machine_basics()
    meta["python_env"] = info
    meta["args"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()
                    if k not in ("worker", "list", "workload", "file", "verify_out", "verify_idx")}
    meta["image_sets"] = {k: {"count": len(v), "bytes": sum(f.stat().st_size for f in v),
                              "list": str(lists[k])} for k, v in sets.items() if v}

    rows: list[dict] = []
    t_start = time.perf_counter()
    for w in workloads:
        kind = "png" if w == "png" else "jpeg"
        n = len(sets[kind])
        for th in threads:
            cell = []
            for impl in contenders:
                if impl not in APPLIES[w]:
                    continue
                common = ["--list", str(lists[kind]), "--workload", w, "--threads", str(th),
                          "--repeat", str(a.repeat)]
                print(f"[{time.perf_counter() - t_start:6.1f}s] {w} threads={th} {impl} ...",
                      file=sys.stderr, flush=True)
                if impl == "spdl-rs":
                    res, err, rus = run_child_rusage(spdl_rs + common, a.timeout)
                else:
                    extra = ["--batch", str(a.batch)]
                    if a.opencv_bgr:
                        extra.append("--opencv-bgr")
                    if a.verify_images and th == threads[0]:
                        extra += ["--verify-out", str(vdir / f"{w}-{impl}.npz"),
                                  "--verify-idx", ",".join(map(str, vidx[kind]))]
                    res, err, rus = run_child(me + ["--worker", impl] + common + extra, a.timeout)
                row = {"workload": w, "threads": th, "impl": impl}
                if res is None or not res.get("times_s"):
                    row["error"] = (err or "no result").strip() or "no result"
                    print(f"  -> ERROR: {row['error'][:2000]}", file=sys.stderr)
                    cell.append(row)
                    continue
                if err.strip():
                    row["stderr"] = err.strip()[-2000:]
                row.update({k: v for k, v in res.items() if k not in ("impl", "workload", "threads")})
                if "peak_rss_kb" not in row and rus.get("maxrss_kb"):
                    row["peak_rss_kb"] = rus["maxrss_kb"]
                if not row.get("cpu_times_s") and rus.get("cpu_s") is not None:
                    # includes process start-up, warm-up and all repeats: an upper bound
                    row["cpu_times_s"] = [rus["cpu_s"] / len(res["times_s"])]
                    row["cpu_estimated"] = True
                # sanity checks
                problems = []
                if row.get("images") != n:
                    problems.append(f"images {row.get('images')}≠{n}")
                shp = row.pop("shapes", None)
                if shp is not None:
                    if w == "resize224":
                        want = [[min(a.batch, n - i), RESIZE, RESIZE, 3] for i in range(0, n, a.batch)]
                    else:
                        want = [[h, w_, 3] for (w_, h) in sizes[kind]]
                    bad = [i for i, (g, e) in enumerate(zip(shp, want)) if list(g) != e]
                    if len(shp) != len(want) or bad:
                        i0 = bad[0] if bad else min(len(shp), len(want))
                        problems.append(f"shape #{i0} {shp[i0] if i0 < len(shp) else None}"
                                        f"≠{want[i0] if i0 < len(want) else None}"
                                        f" ({len(bad)} bad of {len(want)})")
                    row["shapes_checked"] = len(want)
                row["check"] = "ok" if not problems else "; ".join(problems)
                if problems:
                    print(f"  -> CHECK FAILED: {row['check']}", file=sys.stderr)
                row["summary"] = bench_common.summarize(row, "images")
                print(f"  -> median {row['summary']['median_s'] * 1e3:.0f} ms, "
                      f"{row['summary']['fps']:.0f} images/s", file=sys.stderr)
                cell.append(row)
            bench_common.attach_speedups(cell)
            rows.append(cell)
    flat = [r for cell in rows for r in cell]
    meta["loadavg_end"] = os.getloadavg()
    meta["total_wall_s"] = time.perf_counter() - t_start

    verify = verify_outputs(vdir, workloads, contenders, vidx) if a.verify_images else None
    for line in verify or []:
        print("verify:", line, file=sys.stderr)

    print(render_report(meta, flat, a, verify, contenders, workloads))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"meta": meta, "results": flat, "verify": verify,
                                      "contender_notes": CONTENDER_NOTES}, indent=2))
        print(f"wrote {a.json}", file=sys.stderr)
    bad = [r for r in flat if r.get("error") or r.get("check", "ok") != "ok"]
    return 1 if bad else 0


def render_report(meta: dict, flat: list[dict], a, verify, contenders, workloads) -> str:
    env = meta.get("python_env") or {}
    pk = env.get("packages", {})
    libs = env.get("libs", {})
    out = ["## Image decode: spdl-rs vs peers", ""]
    out.append(f"- CPU: {meta['cpu_model']} — {meta['logical_cpus']} logical CPUs "
               f"({meta['affinity_cpus']} usable); kernel {meta['kernel']}")
    out.append(f"- load average at start {tuple(round(x, 2) for x in meta['loadavg_start'])}, "
               f"end {tuple(round(x, 2) for x in meta['loadavg_end'])}; total {meta['total_wall_s']:.0f} s")
    for k, s in meta["image_sets"].items():
        out.append(f"- {k}: {s['count']} files, {s['bytes'] / 1e6:.1f} MB ({s['list']})")
    if env:
        out.append(f"- Python {env.get('python')}: " + ", ".join(f"{k} {v}" for k, v in pk.items()))
        if libs:
            out.append("- codec libraries: " + "; ".join(f"{k}: {v}" for k, v in libs.items() if v))
    out.append(f"- repeats per cell: {a.repeat} (after one untimed warm-up on the first "
               f"{2 * a.batch} files); threads: {a.threads} (1 = plain loop, N = "
               f"ThreadPoolExecutor(N) / spdl.pipeline num_threads=N); resize224 batch {a.batch}")
    out.append("- speed-up = peer median / spdl-rs median (> 1: spdl-rs faster); "
               "CPU = user+sys of all threads per pass, sys part in parentheses "
               "(~ = whole-process estimate)")
    out.append("")
    lead = [("workload", lambda r: r["workload"]), ("thr", lambda r: str(r["threads"])),
            ("impl", lambda r: r["impl"])]
    out.append(bench_common.render_table(flat, lead, "images", "images/s"))
    out.append("")
    out.append("Contenders:")
    for c in contenders:
        if c in CONTENDER_NOTES:
            out.append(f"- `{c}`: {CONTENDER_NOTES[c]}")
    if verify:
        out.append("")
        out += [f"- verify: {m}" for m in verify]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
