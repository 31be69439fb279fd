"""spdl_rs.pipeline: Python and native stages, failure reports, fork and exit."""
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import spdl_rs
from spdl_rs import io as sio
from spdl_rs.pipeline import PipelineBuilder

from conftest import FIXTURES

IMAGES = [str(FIXTURES / "images" / f) for f in ("jpeg_baseline_420.jpg", "png_rgb8.png", "jpeg_gray.jpg")]


def test_python_stages_transform_every_item():
    pipeline = (
        PipelineBuilder()
        .add_source(range(100))
        .pipe(lambda x: x + 1, concurrency=2)
        .pipe(lambda x: x * 2)
        .pipe(lambda x: x, name="identity")
        .add_sink(8)
        .build(num_threads=2)
    )
    out = list(pipeline)
    assert sorted(out) == [(i + 1) * 2 for i in range(100)]
    # Each epoch iterates the source again.
    assert sorted(pipeline.run(1)) == sorted(out)


def test_disaggregate_splits_native_groups_and_python_iterables():
    pipeline = (
        PipelineBuilder()
        .add_source(range(10_000))
        .aggregate(32)
        .disaggregate()
        .pipe(lambda x: (x, -x))
        .disaggregate()
        .build(num_threads=2)
    )
    out = list(pipeline)
    # Every item once, in source order (aggregate and disaggregate keep it).
    assert out[0::2] == list(range(10_000))
    assert out[1::2] == [-x for x in range(10_000)]
    bad = PipelineBuilder().add_source([1, 2]).disaggregate().build()
    run = bad.run()
    assert list(run) == []
    assert [f[1] for f in run.failures()] == [0, 1]
    assert all("Python iterable" in f[2] or "not iterable" in f[2] for f in run.failures())


def test_a_fast_python_source_is_never_cut_short():
    # Regression: the source pulls Python items in timed batches, and a
    # batch cut to zero items (the thread preempted before its first pull)
    # used to end the source early, silently (6 of 40 runs of 200k items).
    for threads in (1, 2) * 10:
        pipeline = PipelineBuilder().add_source(range(100_000)).aggregate(32).disaggregate().build(num_threads=threads)
        assert sum(1 for _ in pipeline) == 100_000


def test_native_decode_and_collate_equal_the_batch_loader():
    pipeline = (
        PipelineBuilder()
        .add_source(IMAGES * 4)
        .decode_image(size=(64, 48), concurrency=2, ordered=True)
        .aggregate(4)
        .collate()
        .build(num_threads=2)
    )
    batches = list(pipeline)
    assert [b.shape for b in batches] == [(4, 48, 64, 3)] * 3
    want = sio.load_image_batch(IMAGES * 4, size=(64, 48))
    got = np.concatenate(batches)
    # With ordered=True the output follows the source order.
    assert np.array_equal(got, want)


def test_native_audio_decode_equals_load_audio():
    files = [str(FIXTURES / "audio" / f) for f in
             ("flac_s16_44100_stereo.flac", "mp3_cbr_128k_44100_stereo.mp3", "pcm_s16le_16000_mono.wav")]
    pipeline = (
        PipelineBuilder()
        .add_source(files)
        .decode_audio(sample_rate=16000, concurrency=2, ordered=True)
        .build(num_threads=2)
    )
    got = list(pipeline)
    assert len(got) == len(files)
    for samples, f in zip(got, files):
        want, rate = sio.load_audio(f, sample_rate=16000)
        assert rate == 16000 and samples.dtype == np.float32
        assert np.array_equal(samples, want), f


def test_failures_report_exactly_the_dropped_items():
    srcs = [IMAGES[0], "/no/such/file.jpg", IMAGES[1], str(FIXTURES / "images" / "not_image.png"), IMAGES[2]]

    def reject_small(image):
        if image.shape[0] < 100:
            raise ValueError("too small")
        return image

    with PipelineBuilder().add_source(srcs).decode_image().pipe(reject_small).build().run() as run:
        out = list(run)
        failures = run.failures()
        stats = run.stats()
    assert len(out) == 3
    assert sorted((stage, item) for stage, item, _ in failures) == [("decode_image", 1), ("decode_image", 3)]
    assert "no/such/file.jpg" in failures[0][2] or "no/such/file.jpg" in failures[1][2]
    assert "decode_image" in str(stats)
    by_name = {s["name"]: s for s in stats.stages}
    assert by_name["decode_image"]["items_in"] == 5
    assert by_name["decode_image"]["failures"] == 2
    assert by_name["reject_small"]["items_out"] == 3
    assert 0.0 <= by_name["decode_image"]["occupancy"] <= 1.0
    assert by_name["decode_image"]["p50"] > 0
    assert stats.bottleneck in by_name


def test_a_failure_budget_stops_the_run():
    def boom(x):
        raise RuntimeError("boom")

    run = PipelineBuilder().add_source(range(50)).pipe(boom).build(max_failures=3).run()
    with pytest.raises(spdl_rs.PipelineFailure):
        list(run)


def test_a_pipeline_is_rebuilt_after_fork():
    parent = PipelineBuilder().add_source(range(10)).pipe(lambda x: x).build(num_threads=2)
    assert sorted(parent) == list(range(10))
    pid = os.fork()
    if pid == 0:
        try:
            try:
                list(parent)
                os._exit(3)  # must refuse: its threads are in the parent
            except RuntimeError:
                pass
            child = PipelineBuilder().add_source(range(10)).pipe(lambda x: x * 3).build(num_threads=2)
            os._exit(0 if sorted(child) == [x * 3 for x in range(10)] else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


EXIT_MID_ITERATION = """
import time, spdl_rs
from spdl_rs.pipeline import PipelineBuilder
def slow(x):
    time.sleep(0.05)
    return x
run = PipelineBuilder().add_source(range(10**6)).pipe(slow, concurrency=4).build(num_threads=4).run()
for i, item in enumerate(run):
    if i == 5:
        break
print("leaving", flush=True)
"""


def test_exit_in_the_middle_of_iteration_returns_promptly():
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", EXIT_MID_ITERATION], capture_output=True, text=True, timeout=30)
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    assert "leaving" in proc.stdout
    assert elapsed < 10, f"exit took {elapsed:.1f}s"


def test_builder_misuse_is_refused_when_it_happens():
    with pytest.raises(TypeError):
        PipelineBuilder().add_source(None)
    with pytest.raises(ValueError, match="first call"):
        PipelineBuilder().add_source([1]).add_source([2])
    with pytest.raises(ValueError, match="first call"):
        PipelineBuilder().aggregate(2).add_source([1])
    with pytest.raises(ValueError, match="n >= 1"):
        PipelineBuilder().add_source([1]).aggregate(0)
    for bad in (-1.0, float("nan"), 0.0, 1e300):
        with pytest.raises(ValueError, match="timeout"):
            PipelineBuilder().add_source([1]).pipe(lambda x: x, timeout=bad)
    with pytest.raises(ValueError, match="num_threads"):
        PipelineBuilder().add_source([1]).add_sink().build(num_threads=10**6)
    with pytest.raises(ValueError, match="size"):
        PipelineBuilder().add_source(IMAGES).decode_image(size=(0, 0))
    with pytest.raises(ValueError, match="sample_rate"):
        PipelineBuilder().add_source(IMAGES).decode_audio(sample_rate=0)
    # An infinite timeout is no timeout.
    run = PipelineBuilder().add_source([1, 2]).pipe(lambda x: x, timeout=float("inf")).add_sink().build().run()
    assert sorted(run) == [1, 2]


SIGINT_DURING_SLOW_STAGE = """
import os, signal, threading, time
from spdl_rs.pipeline import PipelineBuilder
def slow(x):
    time.sleep(30)
    return x
run = PipelineBuilder().add_source([1]).pipe(slow).add_sink().build().run()
threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
t0 = time.monotonic()
try:
    next(run)
    print("finished")
except KeyboardInterrupt:
    print("interrupted %.1f" % (time.monotonic() - t0))
"""


def test_ctrl_c_stops_a_wait_on_a_slow_stage():
    out = subprocess.run([sys.executable, "-c", SIGINT_DURING_SLOW_STAGE], capture_output=True, text=True, timeout=120)
    # The stage sleeps 30 s; the interrupt lands within the 50 ms polling.
    assert out.stdout.startswith("interrupted"), out.stdout + out.stderr
    assert float(out.stdout.split()[1]) < 10, out.stdout


def test_a_raising_source_ends_the_run_with_pipeline_failure():
    """The items before the exception arrive, then PipelineFailure: never a short epoch."""

    def source():
        yield from range(5)
        raise OSError("the shard server went away")

    pipeline = PipelineBuilder().add_source(source()).pipe(lambda x: x * 10).add_sink(4).build()
    got = []
    run = pipeline.run()
    with pytest.raises(spdl_rs.PipelineFailure, match="OSError: the shard server went away") as raised:
        for item in run:
            got.append(item)
    assert sorted(got) == [0, 10, 20, 30, 40]
    # The source's own exception, traceback included, is chained.
    cause = raised.value.__cause__
    assert isinstance(cause, OSError) and str(cause) == "the shard server went away"
    assert cause.__traceback__ is not None
    assert [(f[0], f[1]) for f in run.failures()] == [("source", 5)]
    assert "OSError" in run.failures()[0][2]


def test_a_run_inherited_across_fork_raises_in_the_child_instead_of_hanging():
    def slow(x):
        time.sleep(0.01)
        return x

    run = PipelineBuilder().add_source(range(100)).pipe(slow, concurrency=2).build(num_threads=2).run()
    first = next(run)
    pid = os.fork()
    if pid == 0:
        try:
            try:
                next(run)
                os._exit(3)  # must refuse: the run's threads are in the parent
            except RuntimeError as e:
                os._exit(0 if "another process" in str(e) else 4)
        except BaseException:
            os._exit(2)
    deadline = time.monotonic() + 20
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        assert time.monotonic() < deadline, "the child hung on the inherited run"
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(status) == 0
    assert sorted([first, *run]) == list(range(100))  # the parent's run goes on


def test_build_run_drop_cycles_keep_memory_flat():
    # Regression: each pipeline's threads kept their Python thread states
    # (about 0.7 KB a cycle), and a dropped pipeline joined its threads with
    # the GIL held; 10,000 cycles grew RSS by tens of MB.
    import asyncio
    import gc

    def rss_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6

    async def anap(x):
        return x

    def cycle(i):
        builder = PipelineBuilder().add_source(range(3))
        builder = builder.pipe(anap) if i % 4 == 0 else builder.pipe(lambda x: x + 1)
        assert len(list(builder.build(num_threads=1))) == 3

    for i in range(500):
        cycle(i)
    gc.collect()
    before = rss_mb()
    for i in range(10_000):
        cycle(i)
    gc.collect()
    grown = rss_mb() - before
    assert grown < 4.0, f"RSS grew {grown:.1f} MB over 10,000 cycles ({grown * 100:.0f} B per cycle)"
