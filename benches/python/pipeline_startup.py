"""Per-epoch fixed cost of a spdl_rs pipeline from Python: build, run one item
through one Python stage to the end of the epoch, drop; beside a
ThreadPoolExecutor(1) round trip (the floor a thread hand-off sets).

    .venv-test/bin/python benches/python/pipeline_startup.py [--rounds 5] [--n 200]

Interleaved rounds, medians; prints one line per contender (ms per cycle,
cycles/s) and the phases of the pipeline cycle (build, first item, end of
epoch, drop).
"""
import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from spdl_rs.pipeline import PipelineBuilder


def identity(x):
    return x


def pipeline_cycle():
    t0 = time.perf_counter()
    pipeline = PipelineBuilder().add_source([1]).pipe(identity).add_sink(2).build(num_threads=1)
    t1 = time.perf_counter()
    run = iter(pipeline)
    first = next(run)
    t2 = time.perf_counter()
    rest = list(run)
    t3 = time.perf_counter()
    del run, pipeline
    t4 = time.perf_counter()
    assert [first, *rest] == [1]
    return t1 - t0, t2 - t1, t3 - t2, t4 - t3


def executor_cycle():
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(identity, 1).result() == 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n", type=int, default=200)
    a = ap.parse_args()
    for _ in range(20):
        pipeline_cycle()
    totals = {"spdl_rs pipeline": [], "ThreadPoolExecutor(1)": []}
    phases = []
    for _ in range(a.rounds):
        t = time.perf_counter()
        phases += [pipeline_cycle() for _ in range(a.n)]
        totals["spdl_rs pipeline"].append((time.perf_counter() - t) / a.n)
        t = time.perf_counter()
        for _ in range(a.n):
            executor_cycle()
        totals["ThreadPoolExecutor(1)"].append((time.perf_counter() - t) / a.n)
    for name, v in totals.items():
        m = statistics.median(v)
        print(f"{name:24s} {m * 1e3:7.3f} ms  {1 / m:8,.0f} /s")
    names = ("build", "first item", "end of epoch", "drop")
    print("phases (median ms):", ", ".join(f"{n} {statistics.median(p) * 1e3:.3f}" for n, p in zip(names, zip(*phases))))


if __name__ == "__main__":
    main()
