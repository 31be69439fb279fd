"""Soak test (a script, not CI): decode a mixed folder in a loop through the
Python pipeline for a while, with about 10% broken files, and check that
memory and threads stay flat and that every broken file is reported in
every epoch.

    .venv-test/bin/python scripts/soak.py --minutes 30

The folder (under --work, default /tmp/spdl-soak) holds copies of the
repository's image, video and audio fixtures that decode, plus broken
files made from them (truncated to 40%, or the header overwritten). Each
epoch routes every file by extension to a native decode stage (image,
video or audio); an epoch must deliver every good file and report exactly
the broken ones. RSS and the thread count are sampled after every epoch;
the report gives their slope over the second half of the run (after
warm-up). Exits 1 if an epoch loses or misreports a file, or if RSS grows
faster than --max-mb-per-hour or the thread count grows at all.
"""
import argparse
import gc
import os
import pathlib
import shutil
import sys
import threading
import time

from spdl_rs import io as sio
from spdl_rs.pipeline import PipelineBuilder

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
KINDS = {"image": (".jpg", ".png", ".webp", ".bmp", ".gif"), "video": (".mp4", ".mkv"), "audio": (".wav", ".flac", ".mp3", ".ogg", ".m4a")}


def kind_of(path):
    ext = os.path.splitext(path)[1].lower()
    return next(k for k, exts in KINDS.items() if ext in exts)


def decodes(path):
    try:
        {"image": sio.load_image, "video": sio.load_video, "audio": sio.load_audio}[kind_of(path)](path)
        return True
    except Exception:  # noqa: BLE001 - only the fixtures that decode are used
        return False


def make_folder(work: pathlib.Path):
    """Good copies of decodable fixtures and ~10% broken files made from them."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    candidates = [p for p in sorted(FIXTURES.rglob("*")) if p.is_file() and any(p.suffix.lower() in e for e in KINDS.values())]
    good = [p for p in candidates if p.stat().st_size < 3_000_000 and decodes(str(p))]
    files, broken = [], set()
    for i, src in enumerate(good):
        dst = work / f"{i:03d}_{src.name}"
        shutil.copyfile(src, dst)
        files.append(str(dst))
        if i % 9 == 0:  # about one broken file per ten
            data = src.read_bytes()
            bad = work / f"{i:03d}_broken_{src.name}"
            bad.write_bytes(data[: len(data) * 2 // 5] if i % 2 else b"\0" * 64 + data[64:])
            files.append(str(bad))
            broken.add(str(bad))
    # A broken file that still decodes (the decoder conceals the damage) is
    # not broken for this test: keep only those every decoder refuses.
    broken = {b for b in broken if not decodes(b)}
    return files, broken


def build(files):
    branch = {
        "image": PipelineBuilder().decode_image(size=(64, 48), concurrency=2),
        "video": PipelineBuilder().decode_video(size=(32, 24)),
        "audio": PipelineBuilder().decode_audio(sample_rate=16000),
    }
    order = list(branch)
    return (
        PipelineBuilder()
        .add_source(files)
        .route(lambda p: order.index(kind_of(p)), [branch[k] for k in order])
        .add_sink(8)
        .build(num_threads=2)
    )


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def slope(xs, ys):
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var if var else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--work", default="/tmp/spdl-soak")
    ap.add_argument("--max-mb-per-hour", type=float, default=20)
    a = ap.parse_args()
    files, broken = make_folder(pathlib.Path(a.work))
    print(f"soak: {len(files)} files, {len(broken)} broken, {a.minutes} min", flush=True)
    pipeline = build(files)
    t0, samples, epoch, errors = time.monotonic(), [], 0, 0
    while time.monotonic() - t0 < a.minutes * 60:
        run = pipeline.run(epoch)
        delivered = sum(1 for _ in run)
        failed = {files[item] for _, item, _ in run.failures()}
        if delivered != len(files) - len(broken) or failed != broken:
            errors += 1
            print(f"epoch {epoch}: delivered {delivered}, expected {len(files) - len(broken)}; "
                  f"unexpected failures {sorted(failed - broken)}, missing {sorted(broken - failed)}", flush=True)
        del run
        gc.collect()
        samples.append((time.monotonic() - t0, rss_mb(), threading.active_count(), len(os.listdir("/proc/self/task"))))
        epoch += 1
    half = samples[len(samples) // 2:]
    hours = [t / 3600 for t, *_ in half]
    mb_per_hour = slope(hours, [r for _, r, *_ in half])
    os_threads = [n for *_, n in half]
    print(f"soak: {epoch} epochs, {epoch * len(files)} files, {errors} bad epochs; "
          f"RSS {samples[0][1]:.1f} -> {samples[-1][1]:.1f} MB, second-half slope {mb_per_hour:+.2f} MB/h; "
          f"OS threads {min(os_threads)}..{max(os_threads)} (second half)", flush=True)
    ok = errors == 0 and mb_per_hour <= a.max_mb_per_hour and max(os_threads) <= min(os_threads)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
