"""Pipeline overhead side by side, spdl-rs (Rust) and SPDL 0.8's Python
pipeline, in one run, on the shapes of the pipeline issue:
(1) 3 no-op blocking stages, (2) 3 no-op async stages, (3) an async stage
sleeping 10 ms per item at concurrency 32 over 2000 items (ideal 3200
items/s), (4) aggregate(32) then disaggregate(); plus an empty pipeline's
start-to-first-item and shutdown times.

    .venv-bench/bin/python benches/compare_pipeline.py --spdl-rs-cmd EXE [--items 100000] [--repeat 3]

SPDL moves about a thousand items/s, so it runs min(items, --spdl-items).
"""
import argparse
import asyncio
import json
import statistics
import subprocess
import time


def spdl_pipeline(kind: str, items: int):
    from spdl.pipeline import PipelineBuilder

    async def anoop(x):
        return x

    def noop(x):
        return x

    async def sleep(x):
        await asyncio.sleep(0.01)
        return x

    b = PipelineBuilder().add_source(range(items))
    if kind == "blocking":
        b = b.pipe(noop).pipe(noop).pipe(noop)
    elif kind == "async":
        b = b.pipe(anoop).pipe(anoop).pipe(anoop)
    elif kind == "sleep":
        b = b.pipe(sleep, concurrency=32)
    elif kind == "regroup":
        b = b.aggregate(32).disaggregate()
    return b.add_sink(3).build(num_threads=1)


def spdl_times(kind: str, items: int, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        pipeline = spdl_pipeline(kind, items)
        t0 = time.perf_counter()
        with pipeline.auto_stop():
            n = sum(1 for _ in pipeline)
        times.append(time.perf_counter() - t0)
        assert n == items, (kind, n, items)
    return times


def spdl_startup(repeat: int) -> tuple[float, float]:
    firsts, stops = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        pipeline = spdl_pipeline("async", 1)
        pipeline.start()
        next(iter(pipeline))
        firsts.append(time.perf_counter() - t0)
        t1 = time.perf_counter()
        pipeline.stop()
        stops.append(time.perf_counter() - t1)
    return statistics.median(firsts), statistics.median(stops)


def rs(cmd: str, kind: str, items: int, repeat: int) -> list[float]:
    out = subprocess.run(
        [cmd, "--kind", kind, "--items", str(items), "--repeat", str(repeat)],
        check=True, capture_output=True, text=True,
    ).stdout.strip().splitlines()[-1]
    return json.loads(out)["times_s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--spdl-rs-cmd", required=True)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--spdl-items", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    print("| workload | spdl-rs items/s | SPDL 0.8 items/s | speed-up |")
    print("|---|---|---|---|")
    for kind, label, n in [
        ("blocking", "(1) 3 blocking no-ops", a.items),
        ("async", "(2) 3 async no-ops", a.items),
        ("sleep", "(3) sleep 10 ms x 2000 at concurrency 32 (ideal 3200)", 2000),
        ("regroup", "(4) aggregate(32) + disaggregate()", a.items),
    ]:
        rate_rs = n / statistics.median(rs(a.spdl_rs_cmd, kind, n, a.repeat))
        m = min(n, a.spdl_items)
        rate_py = m / statistics.median(spdl_times(kind, m, a.repeat))
        print(f"| {label} | {rate_rs:,.0f} | {rate_py:,.0f} | {rate_rs / rate_py:.1f}x |")
    for kind, label in [
        ("sleep-tokio", "(3') the same sleeps on plain tokio, no pipeline (tokio timer ceiling)"),
        ("sleep-precise", "(3'') (3) with a 10 ms wait that ends on time (one deadline thread)"),
        ("sleep-precise-tokio", "(3''') the waits of (3'') on plain tokio, no pipeline (their ceiling)"),
    ]:
        rate = 2000 / statistics.median(rs(a.spdl_rs_cmd, kind, 2000, a.repeat))
        print(f"| {label} | {rate:,.0f} ({rate / 3200:.1%} of ideal) | | |")
    t = rs(a.spdl_rs_cmd, "startup", 1, 5)
    first_rs, stop_rs = statistics.median(t[0::2]), statistics.median(t[1::2])
    first_py, stop_py = spdl_startup(5)
    print(f"| empty pipeline: build to first item | {first_rs * 1e3:.2f} ms | {first_py * 1e3:.2f} ms | |")
    print(f"| empty pipeline: shutdown | {stop_rs * 1e3:.2f} ms | {stop_py * 1e3:.2f} ms | |")


if __name__ == "__main__":
    main()
