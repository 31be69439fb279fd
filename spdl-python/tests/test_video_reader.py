"""spdl_rs.io.VideoReader: one open video read many ways, checked against
the full decode (itself checked against the ffmpeg CLI in test_io)."""

import threading

import numpy as np
import pytest

from spdl_rs import io as sio

from conftest import FIXTURES

CLIP = FIXTURES / "long_h264.mp4"


@pytest.fixture(scope="module")
def full():
    return sio.load_video(CLIP, size=(64, 48), return_pts=True)


def test_indexing_and_slices_equal_the_full_decode(full):
    frames, pts = full
    r = sio.VideoReader(CLIP, size=(64, 48))
    assert len(r) == len(frames)
    assert r.index_origin == "sample_table"
    assert np.array_equal(r[0], frames[0]) and np.array_equal(r[-1], frames[-1])
    assert np.array_equal(r[10:40:7], frames[10:40:7])
    assert np.array_equal(r[::-50], frames[::-50])
    got, got_pts = r.get_frames_at([200, 3, 200, 0], return_pts=True)
    assert np.array_equal(got, frames[[200, 3, 200, 0]]) and np.array_equal(got_pts, pts[[200, 3, 200, 0]])
    assert np.array_equal(r.get_frames_in_range(5, 50, 9), frames[5:50:9])
    assert np.allclose(r.frame_times, pts)
    assert r.metadata["num_frames"] == len(frames) and r.metadata["codec"] == "h264"
    with pytest.raises(IndexError, match="long_h264.mp4"):
        r[len(frames)]
    with pytest.raises(ValueError, match="out of range"):
        r.get_frames_at([len(frames)])


def test_times_and_windows(full):
    frames, pts = full
    r = sio.VideoReader(CLIP, size=(64, 48))
    at = [pts[7], pts[8] - 1e-4, pts[100] + 1e-4]
    assert np.array_equal(r.get_frames_played_at(at), frames[[7, 7, 100]])
    inside = (pts >= 1.0) & (pts < 1.5)
    assert np.array_equal(r.get_frames_played_in(1.0, 1.5), frames[inside])
    with pytest.raises(ValueError, match="no frame is shown"):
        r.get_frames_played_at([-1.0])


def test_clips_follow_the_seed_and_the_full_decode(full):
    frames, _ = full
    r = sio.VideoReader(CLIP, size=(64, 48))
    clips, clip_pts = r.get_clips(4, 16, stride=2, seed=5, return_pts=True)
    assert clips.shape == (4, 16, 48, 64, 3) and clip_pts.shape == (4, 16)
    again = sio.VideoReader(CLIP, size=(64, 48)).get_clips(4, 16, stride=2, seed=5)
    assert np.array_equal(clips, again)
    for clip, times in zip(clips, clip_pts):
        first = int(np.argmin(np.abs(full[1] - times[0])))
        assert np.array_equal(clip, frames[first : first + 32 : 2])
    assert not np.array_equal(r.get_clips(4, 16, stride=2, seed=6), clips)


def test_saved_index_opens_without_indexing_again(full):
    r = sio.VideoReader(FIXTURES / "mpeg2_yuv420p.ts", size=(64, 48))
    assert r.index_origin == "scan"
    saved = r.save_index()
    again = sio.VideoReader(FIXTURES / "mpeg2_yuv420p.ts", size=(64, 48), index=saved)
    assert again.index_origin == "scan" and len(again) == len(r)
    assert np.array_equal(again[5], r[5])
    with pytest.raises(ValueError, match="frame index"):
        sio.VideoReader(FIXTURES / "mpeg2_yuv420p.ts", index=saved[:-3])
    with pytest.raises(ValueError, match="seek mode"):
        sio.VideoReader(CLIP, seek_mode="fast")


def test_approximate_mode_reads_the_header_only():
    path = FIXTURES / "vp9_yuv420p.webm"
    exact = sio.VideoReader(path, size=(64, 48))
    approx = sio.VideoReader(path, size=(64, 48), seek_mode="approximate")
    assert approx.index_origin == "header" and exact.index_origin == "scan"
    n = min(len(exact), len(approx))
    assert np.array_equal(approx.get_frames_at([n - 1, 0, n // 2]), exact.get_frames_at([n - 1, 0, n // 2]))


def test_threads_share_a_reader_safely(full):
    frames, _ = full
    r = sio.VideoReader(CLIP, size=(64, 48))
    errors = []

    def work(start):
        try:
            for i in range(start, len(frames), 37):
                assert np.array_equal(r[i], frames[i])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
