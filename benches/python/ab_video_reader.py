"""A/B of `VideoReader.get_frames_at` between two installs of spdl_rs (two
Pythons, e.g. a venv with the previous commit's wheel and .venv-test), on
issue 18's reader tasks.

    python3 benches/python/ab_video_reader.py FILE --a /tmp/oldvenv/bin/python --b .venv-test/bin/python \\
        [--rounds 8] [--threads 2] [--tasks clips 8-open]

Each round runs one process per (task, threads, install) that opens FILE once
and makes 9 calls: `clips` takes 4 random clips of 16 frames, `8-open` 8
random frames, both from the same seeded sequence for A and B. A process
reports its median ms per call; rounds alternate A and B. Prints the median
of the process medians and A/B (> 1: B faster).
"""
import argparse
import statistics
import subprocess

CODE = r"""
import random, statistics, sys, time
import spdl_rs.io as rio
path, threads, task = sys.argv[1], int(sys.argv[2]), sys.argv[3]
reader = rio.VideoReader(path, num_threads=threads)
n = len(reader)
rng = random.Random(1)
times = []
for _ in range(9):
    if task == "clips":
        starts = sorted(rng.randrange(n - 16) for _ in range(4))
        indices = [s + k for s in starts for k in range(16)]
    else:
        indices = sorted(rng.sample(range(n), 8))
    t = time.perf_counter()
    reader.get_frames_at(indices)
    times.append(time.perf_counter() - t)
print(statistics.median(times) * 1e3)
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--threads", type=int, nargs="+", default=[2])
    ap.add_argument("--tasks", nargs="+", default=["clips", "8-open"], choices=["clips", "8-open"])
    a = ap.parse_args()
    res = {}
    for _ in range(a.rounds):
        for task in a.tasks:
            for t in a.threads:
                for name, py in (("A", a.a), ("B", a.b)):
                    out = subprocess.run([py, "-c", CODE, a.file, str(t), task], capture_output=True, text=True, check=True)
                    res.setdefault((task, t, name), []).append(float(out.stdout))
    for task in a.tasks:
        for t in a.threads:
            ma, mb = (statistics.median(res[(task, t, n)]) for n in "AB")
            print(f"{task} threads={t}: A {ma:.1f} ms, B {mb:.1f} ms, A/B {ma / mb:.2f}")


if __name__ == "__main__":
    main()
