"""spdl_rs.pipeline: async def stages, async sources, generator stages, the
run's event loop, per-stage failure budgets and logging."""
import asyncio
import logging
import threading
import time

import pytest

import spdl_rs
from spdl_rs.pipeline import PipelineBuilder


def loop_threads():
    return [t for t in threading.enumerate() if t.name == "spdl-rs-asyncio"]


async def nap(x):
    await asyncio.sleep(0.05)
    return x


def test_async_stage_awaits_concurrently_at_near_the_ideal_rate():
    n, concurrency = 640, 32
    pipeline = PipelineBuilder().add_source(range(n)).pipe(nap, concurrency=concurrency).add_sink(64).build(num_threads=1)
    t0 = time.perf_counter()
    out = list(pipeline)
    elapsed = time.perf_counter() - t0
    assert sorted(out) == list(range(n))  # awaited: values, not coroutines
    ideal = n * 0.05 / concurrency  # 1.0 s
    # Generous: asyncio's own sleeps overshoot; the exact rate is benchmarked.
    assert elapsed < ideal / 0.9, f"{elapsed:.3f} s for an ideal of {ideal:.3f} s"
    # Concurrency is bounded: 32 in flight never takes less than the ideal.
    assert elapsed >= ideal * 0.98


def test_the_event_loop_lives_exactly_as_long_as_the_run():
    pipeline = PipelineBuilder().add_source(range(4)).pipe(nap, concurrency=4).build()
    assert loop_threads() == []
    run = pipeline.run()
    assert len(loop_threads()) == 1
    assert sorted(run) == [0, 1, 2, 3]
    assert loop_threads() == []  # stopped at the end of the epoch
    with pipeline.run(1) as run:
        next(run)
        assert len(loop_threads()) == 1
    assert loop_threads() == []  # stopped by close()
    # A pipeline without async parts never starts one.
    list(PipelineBuilder().add_source(range(3)).pipe(lambda x: x).build())
    assert loop_threads() == []


def test_async_failures_timeouts_and_cancellations_are_reported():
    async def flaky(x):
        if x % 3 == 0:
            raise ValueError(f"bad {x}")
        if x == 4:
            await asyncio.sleep(30)
        if x == 5:
            raise asyncio.CancelledError()
        return x

    run = PipelineBuilder().add_source(range(9)).pipe(flaky, concurrency=4, timeout=0.2).build().run()
    assert sorted(run) == [1, 2, 7, 8]
    reasons = {item: reason for _, item, reason in run.failures()}
    assert reasons[0] == "ValueError: bad 0" and reasons[6] == "ValueError: bad 6"
    assert "timed out after 0.2 s" in reasons[4]
    assert reasons[5] == "cancelled"
    assert sorted(reasons) == [0, 3, 4, 5, 6]


def test_async_sources_and_generator_stages():
    async def numbers():
        for i in range(5):
            await asyncio.sleep(0.001)
            yield i

    async def pairs(x):
        for i in range(x):
            yield (x, i)

    def both_signs(pair):
        x, i = pair
        yield x * 10 + i
        yield -(x * 10 + i)

    out = list(PipelineBuilder().add_source(numbers()).pipe(pairs, ordered=True).pipe(both_signs).build())
    expected = [x * 10 + i for x in range(5) for i in range(x)]
    assert sorted(out) == sorted(expected + [-v for v in expected])


def test_mixed_sync_async_and_native_stages_in_one_pipeline(tmp_path):
    from conftest import FIXTURES

    path = str(FIXTURES / "images" / "png_rgb8.png")

    async def fetch(p):
        await asyncio.sleep(0.001)
        return p

    out = list(
        PipelineBuilder()
        .add_source([path] * 6)
        .pipe(fetch, concurrency=3)
        .pipe(lambda p: p)  # the str stays native for the decode stage
        .decode_image(size=(8, 8))
        .aggregate(3)
        .collate()
        .build(num_threads=2)
    )
    assert [b.shape for b in out] == [(3, 8, 8, 3)] * 2


def test_an_async_source_that_raises_ends_the_run_with_pipeline_failure():
    async def numbers():
        for i in range(3):
            yield i
        raise OSError("listing broke")

    run = PipelineBuilder().add_source(numbers()).pipe(nap, concurrency=2).build().run()
    got = []
    with pytest.raises(spdl_rs.PipelineFailure, match="listing broke") as raised:
        for x in run:
            got.append(x)
    assert isinstance(raised.value.__cause__, OSError)
    assert sorted(got) == [0, 1, 2]


def test_a_sync_function_returning_a_coroutine_is_refused_per_item():
    run = PipelineBuilder().add_source(range(3)).pipe(lambda x: nap(x), name="wrapped").build().run()
    assert list(run) == []
    assert [f[1] for f in run.failures()] == [0, 1, 2]
    assert all("declare the function `async def`" in f[2] for f in run.failures())


def test_per_stage_failure_budget_stops_the_run():
    def odd_fails(x):
        if x % 2:
            raise ValueError("odd")
        return x

    pipeline = PipelineBuilder().add_source(range(100)).pipe(odd_fails, max_failures=3, name="odd").build()
    with pytest.raises(spdl_rs.PipelineFailure, match="odd"):
        list(pipeline)
    # Within the budget the run completes and reports every drop.
    run = PipelineBuilder().add_source(range(7)).pipe(odd_fails, max_failures=3).build().run()
    assert sorted(run) == [0, 2, 4, 6]
    assert len(run.failures()) == 3


def test_dropped_items_reach_python_logging(caplog):
    def fails(x):
        raise ValueError(f"no {x}")

    with caplog.at_level(logging.WARNING, logger="spdl_rs"):
        run = PipelineBuilder().add_source(range(2)).pipe(fails).build().run()
        assert list(run) == []
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("spdl_rs")]
    assert any("ValueError: no 0" in m for m in messages), messages
    assert any("ValueError: no 1" in m for m in messages), messages


def test_spdl_style_arguments_container_stages_output_order_and_rate_budgets():
    table = {i: i * i for i in range(20)}
    out = list(PipelineBuilder().add_source(range(20)).pipe(table, output_order="input", concurrency=4).build())
    assert out == [i * i for i in range(20)]
    with pytest.raises(ValueError, match="output_order"):
        PipelineBuilder().add_source([1]).pipe(table, output_order="random")

    def every_third_fails(x):
        if x % 3 == 0:
            raise ValueError("no")
        return x

    # A third of the items failing is over a 10% rate: the run stops.
    with pytest.raises(spdl_rs.PipelineFailure, match="rate"):
        list(PipelineBuilder().add_source(range(100)).pipe(every_third_fails, max_failures=0.1).build())
    # Under a 50% rate it completes; -1 (SPDL's "unlimited") never stops.
    for budget in (0.5, -1):
        run = PipelineBuilder().add_source(range(30)).pipe(every_third_fails).build(max_failures=budget).run()
        assert len(list(run)) == 20 and len(run.failures()) == 10


def test_first_async_run_broken_off_then_profile_and_exceptions_in_stages():
    # Regression (review): the first run of a fresh process breaking off
    # early used to stop the loop from a thread Python owns, replacing its
    # thread state. Run in a child so the process is fresh.
    import subprocess
    import sys

    code = """
import asyncio
from spdl_rs.pipeline import PipelineBuilder
async def nap(x):
    await asyncio.sleep(0.001)
    return x
async def exits(x):
    raise SystemExit(3)
p = PipelineBuilder().add_source(range(100)).pipe(nap, concurrency=4).build()
for x in p:
    break
print(len(p.profile([1, 2], items=8)))
run = PipelineBuilder().add_source(range(3)).pipe(exits).build().run()
print(list(run), len(run.failures()), run.failures()[0][2])
print(sorted(PipelineBuilder().add_source(range(6)).route(lambda x: -1 if x % 2 else 0, [PipelineBuilder().pipe(lambda x: ("even", x)), PipelineBuilder().pipe(lambda x: ("odd", x))]).build()))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "2"
    assert lines[1].startswith("[] 3 RuntimeError: the stage raised SystemExit")
    assert lines[2] == str(sorted([("even", x) for x in (0, 2, 4)] + [("odd", x) for x in (1, 3, 5)]))
    assert "panicked" not in out.stderr
