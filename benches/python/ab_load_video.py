"""A/B of whole-clip `load_video` between two installs of spdl_rs (two
Pythons, e.g. a venv with the previous commit's wheel and .venv-test).

    python3 benches/python/ab_load_video.py FILE --a /tmp/oldvenv/bin/python --b .venv-test/bin/python [--rounds 3]

Each round runs one process per (install, threads) that loads FILE 5 times
and reports the median frames/s, its minor page faults and system CPU
seconds; rounds alternate A and B. Prints the medians and B/A per thread
count.
"""
import argparse
import statistics
import subprocess

CODE = """
import resource, sys, time
import spdl_rs.io as io
path, threads = sys.argv[1], int(sys.argv[2])
rates = []
for _ in range(5):
    t = time.perf_counter()
    frames = io.load_video(path, num_threads=threads)
    rates.append(frames.shape[0] / (time.perf_counter() - t))
    del frames
u = resource.getrusage(resource.RUSAGE_SELF)
print(sorted(rates)[2], u.ru_minflt, u.ru_stime)
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    res = {}
    for _ in range(a.rounds):
        for name, py in (("A", a.a), ("B", a.b)):
            for t in (1, 2):
                out = subprocess.run([py, "-c", CODE, a.file, str(t)], capture_output=True, text=True, check=True)
                fps, faults, sys_s = out.stdout.split()
                res.setdefault((name, t), []).append((float(fps), int(faults), float(sys_s)))
    for (name, t), v in sorted(res.items()):
        print(f"{name} threads={t}: median {statistics.median(x[0] for x in v):.0f} fps, "
              f"page faults {[x[1] for x in v]}, system s {[round(x[2], 2) for x in v]}")
    for t in (1, 2):
        m = {n: statistics.median(x[0] for x in res[(n, t)]) for n in "AB"}
        print(f"threads={t}: B/A = {m['B'] / m['A']:.2f}")


if __name__ == "__main__":
    main()
