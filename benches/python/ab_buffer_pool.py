"""The output buffer pool's share: the same spdl_rs call with the pool on and
off, interleaved in shuffled order, in one process.

    .venv-test/bin/python benches/python/ab_buffer_pool.py MP3 FLAC VP9_CLIP H264_CLIP [--rounds 7]

Each timed call follows an untimed one that fills the pool (on) or finds it
empty (off, `set_buffer_pool_limit(0)`), as a loop that drops each output
before the next does. Prints a Markdown row per file: median ms (min-max) on,
off, and off/on.
"""
import argparse
import random
import statistics
import time

import spdl_rs.io as rio


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mp3")
    ap.add_argument("flac")
    ap.add_argument("vp9")
    ap.add_argument("h264")
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    limit = rio.buffer_pool_stats()["limit_bytes"]
    calls = {
        "MP3, 60 s stereo -> float32": lambda: rio.load_audio(a.mp3),
        "FLAC, 60 s stereo -> float32": lambda: rio.load_audio(a.flac),
        "VP9 720p 10 s -> RGB": lambda: rio.load_video(a.vp9),
        "H.264 720p 10 s -> RGB": lambda: rio.load_video(a.h264),
    }
    print("| call | pool on ms (min-max) | pool off ms (min-max) | off/on |")
    print("|---|---|---|---|")
    for name, fn in calls.items():
        times = {"on": [], "off": []}
        fn()
        for _ in range(a.rounds):
            for mode in random.sample(list(times), 2):
                rio.set_buffer_pool_limit(limit if mode == "on" else 0)
                fn()
                start = time.perf_counter()
                fn()
                times[mode].append(time.perf_counter() - start)
        rio.set_buffer_pool_limit(limit)
        cell = {m: f"{statistics.median(t) * 1e3:.0f} ({min(t) * 1e3:.0f}-{max(t) * 1e3:.0f})" for m, t in times.items()}
        ratio = statistics.median(times["off"]) / statistics.median(times["on"])
        print(f"| {name} | {cell['on']} | {cell['off']} | {ratio:.2f} |", flush=True)


if __name__ == "__main__":
    main()
