#!/usr/bin/env python3
"""Frame sampling from videos: spdl_rs.io.VideoReader against torchcodec 0.17 and
decord2, side by side in interleaved rounds (issue 18's four tasks).

    bash benches/python/run_torch.sh --video-reader --rounds 3   # venv + this script
    PYTHONPATH=spdl-python/python .venv-torch/bin/python benches/python/video_reader.py \\
        --rounds 5 --threads 1 2

Clips (made on the first run with the ffmpeg CLI, libx264 defaults: B-frames,
GOP 250; testsrc2 pattern, 1280x720 at 30 fps): 10 s and 60 s.

Tasks, each at t decoder threads (spdl_rs num_threads, torchcodec
num_ffmpeg_threads, decord num_threads):
  open+8      open the file and take 8 evenly spaced frames (the open, and the
              index it builds, counted: for torchcodec's default exact mode that is
              a scan of every packet; its approximate mode is a separate row)
  8-open      8 frames at random indices from an already-open reader (new
              indices each call, the same for every contender)
  clips       4 random clips of 16 consecutive frames from an open reader: the
              same 64 indices for every contender (drawn from one seed per
              call number), through get_frames_at / get_batch (spdl_rs's
              get_clips runs the same path on the indices it draws)
  all-224     every frame resized to 224x224 (spdl_rs load_video(size=);
              torchcodec with its Resize decoder transform; decord width/height)
  all-native  every frame at its own size as RGB in one array (issue 19's
              whole-clip row: load_video, get_frames_in_range, get_batch), with
              the ffmpeg CLI decoding to rgb24 into null as the limit (its
              process start included)

--codec vp9 makes and uses VP9 WebM clips (libvpx-vp9 realtime, 2 Mb/s)
instead of H.264 MP4.

Each library returns its own layout (torchcodec NCHW tensors, the others NHWC
uint8): no conversion is timed. Reported: median ms per call, the range, and
speed-up = peer median / spdl_rs median (> 1: spdl_rs faster), and cores =
the process's CPU time (all its threads) over the wall time of the calls. Writes
bench-out/python/video_reader.json and prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench-out" / "python"
MEDIA = ROOT / "bench-out" / "video_reader"


CODECS = {
    "h264": ("mp4", ["-c:v", "libx264", "-preset", "veryfast"]),
    "vp9": ("webm", ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "2M"]),
    "hevc": ("mp4", ["-c:v", "libx265", "-preset", "veryfast", "-x265-params", "log-level=error"]),
    "av1": ("mp4", ["-c:v", "libaom-av1", "-cpu-used", "8", "-row-mt", "1", "-b:v", "2M"]),
}
SIZES = {720: "1280x720", 1080: "1920x1080"}


def make_clip(seconds: int, codec: str = "h264", height: int = 720) -> Path:
    ext, options = CODECS[codec]
    path = MEDIA / f"{codec}_{height}p_{seconds}s.{ext}"
    if not path.exists():
        MEDIA.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
             f"testsrc2=size={SIZES[height]}:rate=30:duration={seconds}", *options,
             "-pix_fmt", "yuv420p", str(path)],
            check=True,
        )
    return path


def contenders(path: Path, threads: int, task: str, rng: random.Random):
    # spdl_rs first: it loads the system FFmpeg bound to its own dav1d. decord
    # loads a bundled dav1d with RTLD_GLOBAL; a system FFmpeg loaded after it
    # (by torchcodec) binds to that one and crashes on AV1.
    import spdl_rs.io as rio

    import decord
    from torchcodec.decoders import VideoDecoder
    from torchcodec.transforms import Resize

    n = len(rio.VideoReader(path))
    even = [((2 * k + 1) * n) // 16 for k in range(8)]
    if task == "open+8":
        return {
            "spdl_rs": lambda: rio.VideoReader(path, num_threads=threads).get_frames_at(even),
            "torchcodec": lambda: VideoDecoder(path, num_ffmpeg_threads=threads).get_frames_at(even),
            "torchcodec-approx": lambda: VideoDecoder(
                path, num_ffmpeg_threads=threads, seek_mode="approximate"
            ).get_frames_at(even),
            "decord2": lambda: decord.VideoReader(str(path), num_threads=threads).get_batch(even),
        }
    if task == "all-native":
        cli = ["ffmpeg", "-nostdin", "-loglevel", "error", "-threads", str(threads), "-i", str(path),
               "-pix_fmt", "rgb24", "-f", "null", "-"]
        return {
            "spdl_rs": lambda: rio.load_video(path, num_threads=threads),
            "torchcodec": lambda: VideoDecoder(path, num_ffmpeg_threads=threads).get_frames_in_range(0, n),
            "decord2": lambda: decord.VideoReader(str(path), num_threads=threads).get_batch(list(range(n))),
            "ffmpeg-cli-null": lambda: subprocess.run(cli, check=True),
        }
    if task == "all-224":
        return {
            "spdl_rs": lambda: rio.load_video(path, size=(224, 224), num_threads=threads),
            "torchcodec": lambda: VideoDecoder(
                path, num_ffmpeg_threads=threads, transforms=[Resize((224, 224))]
            ).get_frames_in_range(0, n),
            "decord2": lambda: decord.VideoReader(
                str(path), num_threads=threads, width=224, height=224
            ).get_batch(list(range(n))),
        }
    ours = rio.VideoReader(path, num_threads=threads)
    theirs = VideoDecoder(path, num_ffmpeg_threads=threads)
    dec = decord.VideoReader(str(path), num_threads=threads)
    if task == "8-open":
        picks = [sorted(rng.sample(range(n), 8)) for _ in range(1000)]
        state = {"spdl_rs": 0, "torchcodec": 0, "decord2": 0}

        def next_pick(who):
            state[who] += 1
            return picks[state[who] % len(picks)]

        return {
            "spdl_rs": lambda: ours.get_frames_at(next_pick("spdl_rs")),
            "torchcodec": lambda: theirs.get_frames_at(next_pick("torchcodec")),
            "decord2": lambda: dec.get_batch(next_pick("decord2")),
        }
    # The same random clips for every contender: each call draws 4 starts from
    # one seeded sequence per contender, so all see the same sequence of calls.
    streams = {name: random.Random(1) for name in ("spdl_rs", "torchcodec", "decord2")}

    def clip_indices(who):
        starts = sorted(streams[who].randrange(n - 16) for _ in range(4))
        return [s + k for s in starts for k in range(16)]

    return {
        "spdl_rs": lambda: ours.get_frames_at(clip_indices("spdl_rs")),
        "torchcodec": lambda: theirs.get_frames_at(clip_indices("torchcodec")),
        "decord2": lambda: dec.get_batch(clip_indices("decord2")),
    }


def run(task, clip, threads, rounds, calls):
    rng = random.Random(0)
    fns = contenders(clip, threads, task, rng)
    times = {name: [] for name in fns}
    cpu = {name: 0.0 for name in fns}
    for fn in fns.values():
        fn()  # warm-up: libraries loaded, page cache filled
    for _ in range(rounds):
        order = list(fns)
        random.shuffle(order)
        for name in order:
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(calls):
                fns[name]()
            times[name].append((time.perf_counter() - start) / calls)
            cpu[name] += time.process_time() - start_cpu
    base = statistics.median(times["spdl_rs"])
    rows = []
    for name, ts in times.items():
        med = statistics.median(ts)
        rows.append({
            "task": task, "clip": clip.name, "threads": threads, "contender": name,
            "ms": med * 1e3, "min_ms": min(ts) * 1e3, "max_ms": max(ts) * 1e3, "speedup": med / base,
            # the process's CPU time (all threads) over its wall time, every round
            "cores": cpu[name] / (sum(ts) * calls),
        })
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--seconds", type=int, nargs="+", default=[10, 60])
    ap.add_argument("--tasks", nargs="+", default=["open+8", "8-open", "clips", "all-224"])
    ap.add_argument("--codec", choices=list(CODECS), default="h264")
    ap.add_argument("--height", type=int, choices=list(SIZES), default=720)
    args = ap.parse_args()
    rows = []
    for seconds in args.seconds:
        clip = make_clip(seconds, args.codec, args.height)
        for task in args.tasks:
            if task.startswith("all-") and seconds > 10:
                continue  # the whole 60 s clip adds minutes and no new information
            calls = {"open+8": 3, "8-open": 5, "clips": 3, "all-224": 1, "all-native": 1}[task]
            for t in args.threads:
                new = run(task, clip, t, args.rounds, calls)
                rows += new
                for r in new:
                    print(f"{task:8} {clip.name:20} t={t} {r['contender']:18} {r['ms']:9.2f} ms  x{r['speedup']:.2f}", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.processor() or platform.machine(), "cpus": __import__("os").cpu_count(),
            "python": platform.python_version()}
    (OUT / "video_reader.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print("\n| task | clip | t | contender | ms/call (median) | range | cores | spdl_rs speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['task']} | {r['clip']} | {r['threads']} | {r['contender']} | {r['ms']:.2f} | "
              f"{r['min_ms']:.2f}-{r['max_ms']:.2f} | {r['cores']:.2f} | {r['speedup']:.2f}x |")


if __name__ == "__main__":
    main()
