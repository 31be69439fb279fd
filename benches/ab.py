#!/usr/bin/env python3
"""A/B two builds of spdl-rs's bench binaries side by side, interleaved.

    python3 benches/ab.py --a DIR_A --b DIR_B [--rounds 5]

DIR_A and DIR_B each hold the `video_decode`, `image_decode` and
`pipeline_overhead` executables of one build (for example
`target/release/deps/video_decode-<hash>` copied or linked there without the
hash; `bash benches/ab.sh REV` makes both). Each round runs every cell once
for A and once for B, alternating which goes first, so drift in the shared
machine's load hits both. Per cell it prints the median over rounds of each
invocation's median time, and B/A (below 1: B is faster).
Media: `bash benches/make_media.sh` and `python3 benches/make_images.py`.
"""
import argparse
import json
import statistics
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench-out"

CELLS = [
    ("video 720p native", "video_decode", ["--file", f"{OUT}/h264_720p.mp4", "--workload", "native", "--repeat", "3"]),
    ("video 720p resize224", "video_decode", ["--file", f"{OUT}/h264_720p.mp4", "--workload", "resize224", "--repeat", "3"]),
    ("video 10s sample8", "video_decode", ["--file", f"{OUT}/h264_10s.mp4", "--workload", "sample8", "--repeat", "5"]),
    ("jpeg native", "image_decode", ["--list", f"{OUT}/images/jpeg_list.txt", "--workload", "native", "--repeat", "3"]),
    ("jpeg resize224", "image_decode", ["--list", f"{OUT}/images/jpeg_list.txt", "--workload", "resize224", "--repeat", "3"]),
    ("png native", "image_decode", ["--list", f"{OUT}/images/png_list.txt", "--workload", "png", "--repeat", "3"]),
    ("pipeline blocking", "pipeline_overhead", ["--kind", "blocking", "--items", "20000", "--repeat", "3"]),
    ("pipeline startup", "pipeline_overhead", ["--kind", "startup", "--items", "200", "--repeat", "3"]),
]


def run(exe: Path, args: list) -> float:
    out = subprocess.run([str(exe), *args], check=True, capture_output=True, text=True).stdout
    line = json.loads(out.strip().splitlines()[-1])
    times = line["times_s"]
    if line.get("kind") == "startup":  # pairs of (build-to-first-item, drop)
        times = [a + b for a, b in zip(times[::2], times[1::2])]
    return statistics.median(times)


def write_lists() -> None:
    """The image lists the image cells read, in name order."""
    for kind, ext in (("jpeg", "jpg"), ("png", "png")):
        files = sorted((OUT / "images" / kind).glob(f"*.{ext}"))
        (OUT / "images" / f"{kind}_list.txt").write_text("".join(f"{p}\n" for p in files))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", type=Path, required=True)
    ap.add_argument("--b", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    write_lists()
    results = {name: ([], []) for name, _, _ in CELLS}
    for r in range(a.rounds):
        for name, exe, args in CELLS:
            order = [0, 1] if r % 2 == 0 else [1, 0]
            for side in order:
                results[name][side].append(run((a.a, a.b)[side] / exe, args))
    print(f"| cell | A median (s) | B median (s) | B/A |")
    print("|---|---|---|---|")
    for name, (ta, tb) in results.items():
        ma, mb = statistics.median(ta), statistics.median(tb)
        print(f"| {name} | {ma:.4f} | {mb:.4f} | {mb / ma:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
