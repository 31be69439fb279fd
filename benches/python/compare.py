"""spdl_rs against Pillow, OpenCV, simplejpeg, PyTurboJPEG, PyAV, soundfile and
SPDL 0.8, in-process from Python, side by side in interleaved rounds.

    bash benches/python/run.sh                 # venv + media + this script
    .venv-bench/bin/python benches/python/compare.py --rounds 7 --threads 1 2

Tasks (each contender does the same work and returns the same array shape):
  image     decode + resize to 224x224 a batch of 32 JPEGs into (32, 224, 224, 3)
  video     decode every frame of a 720p H.264 clip to RGB (N, H, W, 3)
  audio-*   decode a 60 s stereo file (wav, flac, mp3, aac, vorbis, opus) to
            float32; with 2 threads, 2 files in flight; items/s = x realtime
  pipeline  3 no-op Python stages over 20 000 items (items/s)
  pipeline-native  aggregate(32) + disaggregate(), native stages, over a
            Python range (SPDL runs fewer items; times are per item)

Every round runs every contender once, in a shuffled order, so machine noise
spreads over all of them; the report gives the median and min-max per
contender and its speed-up against spdl_rs (peer time / spdl_rs time). Writes
bench-out/python/compare.json, compare.md and compare.png.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import sys

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench-out" / "python"
sys.path.insert(0, str(ROOT / "benches"))
# The JPEG reduction rule (Pillow's draft rule) shared with compare_image.py.
from compare_image import RESIZE as SIZE, _read as read, dct_factor, jpeg_size  # noqa: E402


def pooled(threads, fn, items):
    if threads == 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(fn, items))


def image_contenders(paths, threads):
    import cv2
    import simplejpeg
    import spdl.io
    from PIL import Image
    from turbojpeg import TJPF_RGB, TurboJPEG

    import spdl_rs.io as rio

    cv2.setNumThreads(1)
    tj = TurboJPEG()
    blobs = {p: read(p) for p in paths}  # every contender decodes from memory

    def resize(img):
        return cv2.resize(img, (SIZE, SIZE), interpolation=cv2.INTER_AREA)

    def pillow(p):
        im = Image.open(__import__("io").BytesIO(blobs[p]))
        im.draft("RGB", (SIZE, SIZE))
        return np.asarray(im.convert("RGB").resize((SIZE, SIZE), Image.BILINEAR))

    reduced = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
               8: cv2.IMREAD_REDUCED_COLOR_8}

    def opencv(p):
        buf = np.frombuffer(blobs[p], np.uint8)
        img = cv2.imdecode(buf, reduced[dct_factor(*jpeg_size(blobs[p]))])  # same rule as the others
        return resize(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))

    def simple(p):
        w, h, _, _ = simplejpeg.decode_jpeg_header(blobs[p])
        f = dct_factor(w, h)
        img = simplejpeg.decode_jpeg(blobs[p], colorspace="RGB", min_height=-(-h // f), min_width=-(-w // f))
        return resize(img)

    def turbo(p):
        w, h, _, _ = tj.decode_header(blobs[p])
        f = dct_factor(w, h)
        return resize(tj.decode(blobs[p], pixel_format=TJPF_RGB, scaling_factor=(1, f) if f > 1 else None))

    fdesc = spdl.io.get_video_filter_desc(scale_width=SIZE, scale_height=SIZE, pix_fmt="rgb24")

    def spdl_one(p):
        return spdl.io.to_numpy(spdl.io.load_image(blobs[p], filter_desc=fdesc))

    def spdl_batch():
        if threads == 1:
            return spdl.io.to_numpy(spdl.io.load_image_batch([blobs[p] for p in paths], width=SIZE, height=SIZE))
        return np.stack(pooled(threads, spdl_one, paths))

    data = [blobs[p] for p in paths]
    return {
        "spdl_rs": lambda: rio.load_image_batch(data, size=(SIZE, SIZE), num_threads=threads),
        "spdl 0.8": spdl_batch,
        "Pillow": lambda: np.stack(pooled(threads, pillow, paths)),
        "OpenCV": lambda: np.stack(pooled(threads, opencv, paths)),
        "simplejpeg": lambda: np.stack(pooled(threads, simple, paths)),
        "PyTurboJPEG": lambda: np.stack(pooled(threads, turbo, paths)),
    }


def video_contenders(path, threads):
    import av
    import spdl.io

    import spdl_rs.io as rio

    def pyav():
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            s.thread_type = "AUTO"
            s.thread_count = threads
            return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(s)])

    cfg = spdl.io.decode_config(decoder_options={"threads": str(threads)})

    def spdl_video():
        pk = spdl.io.demux_video(str(path))
        frames = spdl.io.decode_packets(pk, decode_config=cfg, filter_desc=spdl.io.get_video_filter_desc(pix_fmt="rgb24"))
        return spdl.io.to_numpy(spdl.io.convert_frames(frames))

    return {
        "spdl_rs": lambda: rio.load_video(path, num_threads=threads),
        "spdl 0.8": spdl_video,
        "PyAV": pyav,
    }


def audio_contenders(path, threads):
    """Decoders of one file to float32 (channels, samples); with `threads`
    > 1 each call decodes that many copies at once (files in flight).
    Contenders that cannot read the format are left out."""
    import av
    import soundfile
    import spdl.io

    import spdl_rs.io as rio

    def pyav():
        with av.open(str(path)) as c:
            s = c.streams.audio[0]
            return np.concatenate([f.to_ndarray() for f in c.decode(s)], axis=1)

    def spdl_audio():
        return spdl.io.to_numpy(spdl.io.load_audio(str(path)))  # default filter: fltp, (C, N)

    def ffmpeg_cli():
        out = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-threads", "1", "-i", str(path),
                              "-f", "f32le", "-"], capture_output=True, check=True).stdout
        return np.frombuffer(out, np.float32)

    one = {
        "spdl_rs": lambda: rio.load_audio(path)[0],
        # (samples, channels) viewed as (channels, samples), as soundfile below.
        "spdl_rs interleaved": lambda: rio.load_audio(path, layout="interleaved")[0].T,
        "spdl_rs ffmpeg": lambda: rio.load_audio(path, backend="ffmpeg")[0],
        "spdl_rs symphonia": lambda: rio.load_audio(path, backend="symphonia")[0],
        "spdl_rs pcm": lambda: rio.load_audio(path, backend="pcm")[0],
        "spdl 0.8": spdl_audio,
        "soundfile": lambda: soundfile.read(str(path), dtype="float32", always_2d=True)[0].T,
        "PyAV": pyav,
        "ffmpeg CLI": ffmpeg_cli,
    }
    usable = {}
    for name, fn in one.items():
        try:
            fn()
            usable[name] = fn
        except Exception as e:  # noqa: BLE001 - a contender that cannot read this format
            print(f"[audio {path.suffix}] {name}: left out ({type(e).__name__})")
    if threads == 1:
        return usable
    pool = ThreadPoolExecutor(threads)
    return {name: (lambda fn=fn: list(pool.map(lambda _: fn(), range(threads)))) for name, fn in usable.items()}


def pipeline_contenders(items, threads):
    from spdl.pipeline import PipelineBuilder as SpdlBuilder

    from spdl_rs.pipeline import PipelineBuilder

    def noop(x):
        return x

    def ours():
        p = PipelineBuilder().add_source(range(items)).pipe(noop).pipe(noop).pipe(noop).build(num_threads=threads)
        n = sum(1 for _ in p)
        assert n == items
        return n

    def spdl_pipe():
        p = SpdlBuilder().add_source(range(items)).pipe(noop).pipe(noop).pipe(noop).add_sink(3).build(num_threads=threads)
        with p.auto_stop():
            n = sum(1 for _ in p)
        assert n == items
        return n

    return {"spdl_rs": ours, "spdl 0.8": spdl_pipe}


def pipeline_native_contenders(items, spdl_items, threads):
    """aggregate(32) + disaggregate(): spdl_rs runs them natively (no GIL
    between the Python source and the Python consumer), SPDL in its own
    pipeline; returns the contenders and the items each one moves."""
    from spdl.pipeline import PipelineBuilder as SpdlBuilder

    from spdl_rs.pipeline import PipelineBuilder

    def ours():
        p = PipelineBuilder().add_source(range(items)).aggregate(32).disaggregate().add_sink(3).build(num_threads=threads)
        n = sum(1 for _ in p)
        assert n == items
        return n

    def spdl_pipe():
        p = SpdlBuilder().add_source(range(spdl_items)).aggregate(32).disaggregate().add_sink(3).build(num_threads=threads)
        with p.auto_stop():
            n = sum(1 for _ in p)
        assert n == spdl_items
        return n

    return {"spdl_rs": ours, "spdl 0.8": spdl_pipe}, {"spdl_rs": items, "spdl 0.8": spdl_items}


def async_contenders(items, concurrency, sleep):
    """SPDL's asyncio benchmark shape: `await asyncio.sleep(sleep)` per item at
    `concurrency`; plain asyncio (a semaphore and gather on one loop) is the
    ceiling on this machine (asyncio's sleeps overshoot)."""
    import asyncio

    from spdl.pipeline import PipelineBuilder as SpdlBuilder

    from spdl_rs.pipeline import PipelineBuilder

    async def nap(x):
        await asyncio.sleep(sleep)
        return x

    def ours():
        p = PipelineBuilder().add_source(range(items)).pipe(nap, concurrency=concurrency).add_sink(64).build(num_threads=1)
        n = sum(1 for _ in p)
        assert n == items
        return n

    def spdl_pipe():
        p = SpdlBuilder().add_source(range(items)).pipe(nap, concurrency=concurrency).add_sink(64).build(num_threads=1)
        with p.auto_stop():
            n = sum(1 for _ in p)
        assert n == items
        return n

    def plain():
        async def main():
            sem = asyncio.Semaphore(concurrency)

            async def one(i):
                async with sem:
                    return await nap(i)

            return await asyncio.gather(*(one(i) for i in range(items)))

        return len(asyncio.run(main()))

    return {"spdl_rs": ours, "spdl 0.8": spdl_pipe, "plain asyncio": plain}


AUDIO_FORMATS = {
    "wav": ("wav", ["-c:a", "pcm_s16le"]),
    "flac": ("flac", ["-c:a", "flac"]),
    "mp3": ("mp3", ["-c:a", "libmp3lame", "-b:a", "192k"]),
    "aac": ("m4a", ["-c:a", "aac", "-b:a", "192k"]),
    "vorbis": ("ogg", ["-c:a", "libvorbis", "-q:a", "6"]),
    "opus": ("opus", ["-c:a", "libopus", "-b:a", "128k"]),
}


def make_audio(dir_: Path, seconds: int, formats: list[str]) -> dict[str, Path]:
    """A stereo 44.1 kHz tone + pink noise of `seconds` per format (Opus
    resamples to 48 kHz, as it must)."""
    dir_.mkdir(parents=True, exist_ok=True)
    files = {}
    for name in formats:
        ext, codec = AUDIO_FORMATS[name]
        out = dir_ / f"tone_{seconds}s.{ext}"
        if not out.exists():
            subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                            f"sine=frequency=440:sample_rate=44100:duration={seconds}", "-f", "lavfi", "-i",
                            f"anoisesrc=d={seconds}:c=pink:r=44100:a=0.1", "-filter_complex", "[0][1]amerge=inputs=2",
                            "-ac", "2", *codec, str(out)], check=True)
        files[name] = out
    return files


def run_task(name, contenders, rounds, work_items):
    """Interleaved rounds; returns rows with median/min/max seconds and speed-up.

    `work_items` is the work one call does, or a dict of it per contender
    when they do different amounts (times are then scaled to spdl_rs's
    amount, so speed-ups compare per item)."""
    per = work_items if isinstance(work_items, dict) else {k: work_items for k in contenders}
    times = {k: [] for k in contenders}
    shapes = {}
    for fn in contenders.values():  # warm-up (imports, pools, page cache)
        fn()
    for _ in range(rounds):
        order = list(contenders)
        random.shuffle(order)
        for k in order:
            t0 = time.perf_counter()
            out = contenders[k]()
            times[k].append((time.perf_counter() - t0) * per["spdl_rs"] / per[k])
            probe = out[0] if isinstance(out, list) and out else out  # files in flight: one shape
            shapes[k] = getattr(probe, "shape", probe if isinstance(probe, (int, float)) else type(probe).__name__)
            del out
    ref = statistics.median(times["spdl_rs"])
    rows = []
    for k, ts in times.items():
        med = statistics.median(ts)
        rows.append({"task": name, "contender": k, "median_s": med, "min_s": min(ts), "max_s": max(ts),
                     "per_s": per["spdl_rs"] / med, "speedup": med / ref, "shape": str(shapes[k])})
    return rows


def markdown(rows, meta):
    lines = [f"Machine: {meta['machine']}; Python {meta['python']}; {meta['rounds']} interleaved rounds.", "",
             "| task | threads | contender | median ms | min-max ms | items/s | spdl_rs speed-up |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['threads']} | {r['contender']} | {r['median_s'] * 1e3:.1f} | "
                     f"{r['min_s'] * 1e3:.1f}-{r['max_s'] * 1e3:.1f} | {r['per_s']:.1f} | {r['speedup']:.2f}x |")
    return "\n".join(lines) + "\n"


def chart(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({(r["task"], r["threads"]) for r in rows}, key=lambda g: (g[0], g[1]))
    fig, ax = plt.subplots(figsize=(12, 0.45 * len(rows) + 1))
    labels, values = [], []
    for task, threads in groups:
        for r in [r for r in rows if (r["task"], r["threads"]) == (task, threads)]:
            labels.append(f"{task} t{threads}: {r['contender']}")
            values.append(r["speedup"])
    ax.barh(range(len(values)), values, color=["tab:green" if "spdl_rs" in lab else "tab:gray" for lab in labels])
    ax.set_yticks(range(len(values)), labels, fontsize=7)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel("time relative to spdl_rs (higher = spdl_rs faster)")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--tasks", nargs="+", default=["image", "video", "audio", "pipeline", "pipeline-native", "async"])
    ap.add_argument("--async-items", type=int, default=2000)
    ap.add_argument("--pipeline-items", type=int, default=20000)
    ap.add_argument("--native-items", type=int, default=200000)
    ap.add_argument("--audio-seconds", type=int, default=60)
    ap.add_argument("--audio-formats", nargs="+", default=list(AUDIO_FORMATS))
    ap.add_argument("--spdl-native-items", type=int, default=5000)
    a = ap.parse_args()
    random.seed(0)
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    jpegs = sorted((ROOT / "bench-out" / "images" / "jpeg").glob("*.jpg"))[:32]
    for threads in a.threads:
        if "image" in a.tasks:
            for r in run_task("image", image_contenders([str(p) for p in jpegs], threads), a.rounds, len(jpegs)):
                rows.append({**r, "threads": threads})
        if "video" in a.tasks:
            video = ROOT / "bench-out" / "h264_720p.mp4"
            import spdl_rs.io as rio
            frames = len(rio.load_video(video, size=(16, 16)))
            for r in run_task("video", video_contenders(video, threads), a.rounds, frames):
                rows.append({**r, "threads": threads})
        if "pipeline" in a.tasks:
            for r in run_task("pipeline", pipeline_contenders(a.pipeline_items, threads), a.rounds, a.pipeline_items):
                rows.append({**r, "threads": threads})
        if "pipeline-native" in a.tasks:
            contenders, items = pipeline_native_contenders(a.native_items, a.spdl_native_items, threads)
            for r in run_task("pipeline-native", contenders, a.rounds, items):
                rows.append({**r, "threads": threads})
    if "async" in a.tasks:
        # Threads do not matter here: one event loop does the waiting.
        ideal = a.async_items * 0.01 / 32
        for r in run_task("async-sleep", async_contenders(a.async_items, 32, 0.01), a.rounds, a.async_items):
            rows.append({**r, "threads": 1, "of_ideal": ideal / r["median_s"]})
            print(f"async-sleep {r['contender']}: {ideal / r['median_s']:.1%} of the ideal rate")
    if "audio" in a.tasks:
        # items/s = seconds of audio decoded per second (x realtime).
        for name, path in make_audio(ROOT / "bench-out" / "audio", a.audio_seconds, a.audio_formats).items():
            for threads in a.threads:
                for r in run_task(f"audio-{name}", audio_contenders(path, threads), a.rounds,
                                  a.audio_seconds * threads):
                    rows.append({**r, "threads": threads})
    meta = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
            "python": platform.python_version(), "rounds": a.rounds}
    (OUT / "compare.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    (OUT / "compare.md").write_text(markdown(rows, meta))
    chart(rows, OUT / "compare.png")
    print(markdown(rows, meta))


if __name__ == "__main__":
    main()
