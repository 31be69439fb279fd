"""Pipeline overhead side by side: items/s through three no-op stages in
spdl-rs (Rust) and SPDL 0.8's Python pipeline, in one run.

    .venv-bench/bin/python benches/compare_pipeline.py --spdl-rs-cmd EXE [--items 20000] [--repeat 5]
"""
import argparse
import json
import statistics
import subprocess
import time


def spdl_python(items: int, kind: str, repeat: int) -> list[float]:
    from spdl.pipeline import PipelineBuilder

    async def anoop(x):
        return x

    def noop(x):
        return x

    last = noop if kind == "blocking" else anoop
    times = []
    for r in range(repeat + 1):
        pipeline = (
            PipelineBuilder()
            .add_source(range(items))
            .pipe(anoop)
            .pipe(anoop)
            .pipe(last)
            .add_sink(3)
            .build(num_threads=1)
        )
        t0 = time.perf_counter()
        with pipeline.auto_stop():
            n = sum(1 for _ in pipeline)
        elapsed = time.perf_counter() - t0
        assert n == items, (n, items)
        if r > 0:
            times.append(elapsed)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--spdl-rs-cmd", required=True)
    ap.add_argument("--items", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    print("| stages | impl | items | median s | items/s | spdl-rs speed-up |")
    print("|---|---|---|---|---|---|")
    for kind in ["async", "blocking"]:
        out = subprocess.run(
            [a.spdl_rs_cmd, "--items", str(a.items), "--kind", kind, "--repeat", str(a.repeat)],
            check=True, capture_output=True, text=True,
        ).stdout.strip().splitlines()[-1]
        rs = statistics.median(json.loads(out)["times_s"])
        py = statistics.median(spdl_python(a.items, kind, a.repeat))
        label = "3 async no-ops" if kind == "async" else "2 async + 1 blocking no-op"
        print(f"| {label} | spdl-rs | {a.items} | {rs:.4f} | {a.items / rs:,.0f} | (ref) |")
        print(f"| {label} | SPDL 0.8 | {a.items} | {py:.4f} | {a.items / py:,.0f} | {py / rs:.1f}x |")


if __name__ == "__main__":
    main()
