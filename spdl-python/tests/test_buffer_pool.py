"""The output buffer pool: large arrays NumPy frees serve the next output of a
similar size, and an array still alive is never handed out again."""

import gc
import os
import wave
from pathlib import Path

import numpy as np
import pytest

import spdl_rs.io as rio

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
CLIP = FIXTURES / "h264_yuv420p.mp4"  # 50 frames of 320x240: 11.5 MB


@pytest.fixture(autouse=True)
def default_limit():
    limit = rio.buffer_pool_stats()["limit_bytes"]
    yield
    rio.set_buffer_pool_limit(limit)


def test_a_freed_clip_serves_the_next_load_with_identical_frames():
    first = rio.load_video(CLIP)
    expected = first.copy()
    assert type(first.base).__name__ == "PooledBuffer"
    address = first.__array_interface__["data"][0]
    first[:] = 7  # dirty it: the next load must overwrite every byte
    del first
    gc.collect()
    before = rio.buffer_pool_stats()
    assert before["idle_bytes"] >= expected.nbytes
    second = rio.load_video(CLIP)
    after = rio.buffer_pool_stats()
    assert after["hits"] == before["hits"] + 1
    assert second.__array_interface__["data"][0] == address
    np.testing.assert_array_equal(second, expected)


def test_a_live_array_is_never_reused():
    first = rio.load_video(CLIP)
    expected = first.copy()
    second = rio.load_video(CLIP)
    assert not np.shares_memory(first, second)
    second[:] = 0
    np.testing.assert_array_equal(first, expected)
    views = first[10:20]  # a view keeps the buffer alive after its array goes
    del first
    gc.collect()
    third = rio.load_video(CLIP)
    assert not np.shares_memory(views, third)
    np.testing.assert_array_equal(views, expected[10:20])


def test_limit_zero_frees_idle_buffers_and_keeps_none():
    clip = rio.load_video(CLIP)
    del clip
    gc.collect()
    rio.set_buffer_pool_limit(0)
    stats = rio.buffer_pool_stats()
    assert (stats["idle_bytes"], stats["idle_buffers"], stats["limit_bytes"]) == (0, 0, 0)
    clip = rio.load_video(CLIP)
    del clip
    gc.collect()
    assert rio.buffer_pool_stats()["idle_bytes"] == 0
    rio.set_buffer_pool_limit(64 << 20)
    assert rio.buffer_pool_stats()["limit_bytes"] == 64 << 20


def test_freed_audio_serves_the_next_load(tmp_path):
    rate, seconds = 48000, 30  # stereo float32 output: 11.5 MB
    t = np.arange(rate * seconds) / rate
    pcm = (np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)], axis=1) * 20000).astype("<i2")
    path = tmp_path / "long.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    first, _ = rio.load_audio(path)
    assert first.dtype == np.float32 and type(first.base).__name__ == "PooledBuffer"
    expected = first.copy()
    np.testing.assert_array_equal(expected, pcm.T / np.float32(32768))
    del first
    gc.collect()
    hits = rio.buffer_pool_stats()["hits"]
    second, _ = rio.load_audio(path)
    assert rio.buffer_pool_stats()["hits"] == hits + 1
    np.testing.assert_array_equal(second, expected)


def test_a_small_array_owns_its_buffer():
    small = rio.load_image(FIXTURES / "images" / "jpeg_baseline_420.jpg")
    assert small.nbytes < 4 << 20
    assert type(small.base).__name__ != "PooledBuffer"


def test_pipeline_batches_reuse_the_pool_and_idle_buffers_stay_few():
    from spdl_rs.pipeline import PipelineBuilder

    image = FIXTURES / "images" / "jpeg_baseline_420.jpg"
    expected = rio.load_image(image, size=(320, 240))  # 20 per batch: 4.6 MB
    hits = rio.buffer_pool_stats()["hits"]
    pipeline = (
        PipelineBuilder().add_source([str(image)] * 400).decode_image(size=(320, 240))
        .aggregate(20).collate().build(num_threads=1)
    )
    batches = 0
    for batch in pipeline:
        assert batch.shape == (20, 240, 320, 3) and type(batch.base).__name__ == "PooledBuffer"
        np.testing.assert_array_equal(batch[19], expected)
        batches += 1
        del batch
    assert batches == 20
    stats = rio.buffer_pool_stats()
    assert stats["hits"] >= hits + 10, stats  # most batches reuse one freed before
    assert stats["idle_buffers"] <= 8 * 2, stats  # at most 8 per element type


def test_memory_stays_bounded_over_loads_of_many_sizes():
    def rss_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6

    rio.set_buffer_pool_limit(32 << 20)
    ends = [(21 + k - 0.5) / 25 for k in range(24)]  # 21-44 frames at 25 fps: 4.8-10 MB
    for end in ends:
        rio.load_video(CLIP, end=end)
    gc.collect()
    before = rss_mb()
    for _ in range(8):
        for k, end in enumerate(ends):
            frames = rio.load_video(CLIP, end=end)
            assert frames.shape[0] == 21 + k
            del frames
    gc.collect()
    stats = rio.buffer_pool_stats()
    assert stats["idle_bytes"] <= 32 << 20 and stats["idle_buffers"] <= 8, stats
    grown = rss_mb() - before
    assert grown < 16, f"RSS grew {grown:.1f} MB over 192 loads with a 32 MiB pool"
