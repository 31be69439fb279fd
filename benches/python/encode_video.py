#!/usr/bin/env python3
"""Video encoding: spdl_rs.io.VideoWriter against the ffmpeg CLI with the same
encoder settings (issue 20), side by side in interleaved rounds.

    .venv-test/bin/python benches/python/encode_video.py --rounds 3

Both encode the same 150 RGB frames of 1280x720 (decoded once from the bench clip,
made by benches/python/video_reader.py, or from testsrc2 if absent) to H.264 with
libx264 `-preset veryfast -crf 23 -threads 1`, converted to yuv420p with bilinear
swscale. The CLI reads the frames as raw RGB from a pipe (`-f rawvideo`); its time
includes the pipe, which is the way a Python user feeds it. Reported: median
seconds, frames/s, and CLI time / spdl_rs time.
"""
import argparse
import random
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import spdl_rs.io as sio

ROOT = Path(__file__).resolve().parents[2]


def frames():
    clip = ROOT / "bench-out" / "video_reader" / "h264_720p_10s.mp4"
    if not clip.exists():
        raw = subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=5",
             "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], check=True, capture_output=True).stdout
        import numpy as np
        return np.frombuffer(raw, np.uint8).reshape(-1, 720, 1280, 3)
    return sio.VideoReader(clip).get_frames_in_range(0, 150)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    video = frames()
    n, h, w, _ = video.shape
    out = Path(tempfile.mkdtemp())
    opts = {"preset": "veryfast", "crf": "23", "threads": "1"}

    def ours():
        with sio.VideoWriter(out / "a.mp4", w, h, fps=(30, 1), options=opts) as writer:
            writer.write(video)

    def cli():
        cmd = ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", "30",
               "-i", "-", "-sws_flags", "bilinear", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "veryfast",
               "-crf", "23", "-threads", "1", str(out / "b.mp4")]
        subprocess.run(cmd, input=video.tobytes(), check=True)

    fns = {"spdl_rs VideoWriter": ours, "ffmpeg CLI": cli}
    times = {k: [] for k in fns}
    for _ in range(args.rounds):
        for k in random.sample(list(fns), len(fns)):
            t = time.perf_counter()
            fns[k]()
            times[k].append(time.perf_counter() - t)
    base = statistics.median(times["spdl_rs VideoWriter"])
    print(f"{n} frames {w}x{h}")
    print("| encoder | s (median) | frames/s | time / spdl_rs |")
    print("|---|---|---|---|")
    for k, ts in times.items():
        m = statistics.median(ts)
        print(f"| {k} | {m:.2f} | {n / m:.0f} | {m / base:.2f}x |")
    sizes = {k: (out / f).stat().st_size for k, f in [("spdl_rs", "a.mp4"), ("cli", "b.mp4")]}
    print("bytes:", sizes)


if __name__ == "__main__":
    main()
