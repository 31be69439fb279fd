"""spdl_rs.io.save_image / encode_image: PNG and WebP round trips are exact, JPEG at
quality 95 is >= 40 dB from the source and Pillow decodes our files as we do."""

import io

import numpy as np
import pytest
from PIL import Image

from spdl_rs import io as sio

from conftest import FIXTURES


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def photo():
    return sio.load_image(FIXTURES / "images" / "jpeg_baseline_420.jpg")


def test_lossless_formats_round_trip_exactly(tmp_path, photo):
    rgba = np.dstack([photo, np.full(photo.shape[:2], 200, np.uint8)])
    for name, image in [("a.png", photo), ("g.png", photo[..., 0]), ("a.webp", rgba), ("b.png", rgba)]:
        sio.save_image(tmp_path / name, image)
        back = np.asarray(Image.open(tmp_path / name))
        assert np.array_equal(back, image), name


def test_jpeg_quality_and_pillow_agreement(tmp_path, photo):
    data = sio.encode_image(photo, "jpeg", quality=95)
    ours = sio.load_image(data)
    assert psnr(ours, photo) >= 40
    pillow = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert psnr(pillow, ours) >= 40
    # 4:2:0 as Pillow's default: the same bytes' worth of loss as Pillow's encoder.
    small = sio.encode_image(photo, "jpeg", quality=95, subsampling=420)
    pil = io.BytesIO()
    Image.fromarray(photo).save(pil, "JPEG", quality=95)
    assert abs(psnr(sio.load_image(small), photo) - psnr(sio.load_image(pil.getvalue()), photo)) < 0.5
    sio.save_image(tmp_path / "x.jpg", photo, quality=80)
    assert (tmp_path / "x.jpg").stat().st_size < len(small)


def test_bad_arguments_are_clean_errors(tmp_path, photo):
    with pytest.raises(ValueError, match="channels"):
        sio.encode_image(np.zeros((4, 4, 4), np.uint8), "jpeg")
    with pytest.raises(ValueError, match="unknown image format"):
        sio.save_image(tmp_path / "x.gif", photo)
    with pytest.raises(ValueError, match="uint8 array"):
        sio.encode_image(np.zeros((2, 2, 2, 3), np.uint8), "png")


def test_video_writer_round_trip(tmp_path):
    frames = sio.load_video(FIXTURES / "h264_yuv420p.mp4", size=(160, 120))
    path = tmp_path / "out.mp4"
    # 4:4:4: the test pattern's saturated colour edges survive (4:2:0 costs ~8 dB).
    with sio.VideoWriter(path, 160, 120, fps=(25, 1), pix_fmt="yuv444p", options={"crf": "18"}) as w:
        w.write(frames[:20])
        w.write(frames[20:])
    back = sio.load_video(path)
    assert back.shape == frames.shape and psnr(back, frames) >= 35
    with pytest.raises(ValueError, match="nope264"):
        sio.VideoWriter(tmp_path / "x.mp4", 160, 120, codec="nope264")
    w = sio.VideoWriter(tmp_path / "y.mp4", 160, 120)
    w.close()
    with pytest.raises(ValueError, match="closed"):
        w.write(frames[:1])


def test_audio_writer_round_trip(tmp_path):
    samples, rate = sio.load_audio(FIXTURES / "audio" / "flac_s16_44100_stereo.flac")
    for name in ["a.flac", "b.wav"]:
        with sio.AudioWriter(tmp_path / name, rate, 2) as w:
            w.write(samples[:, :5000])
            w.write(samples[:, 5000:])
        back, back_rate = sio.load_audio(tmp_path / name)
        assert back_rate == rate and np.array_equal(back, samples), name
    with pytest.raises(ValueError, match="nope_enc"):
        sio.AudioWriter(tmp_path / "c.wav", rate, 2, codec="nope_enc")


def test_writers_to_memory_equal_files(tmp_path):
    frames = sio.load_video(FIXTURES / "h264_yuv420p.mp4", size=(160, 120))[:15]
    options = {"threads": "1"}
    with sio.VideoWriter(tmp_path / "a.mp4", 160, 120, options=options) as w:
        w.write(frames)
    w = sio.VideoWriter(None, 160, 120, options=options, format="mp4")
    w.write(frames)
    data = w.close()
    assert isinstance(data, bytes) and data == (tmp_path / "a.mp4").read_bytes()
    assert w.close() is None
    samples, rate = sio.load_audio(FIXTURES / "audio" / "flac_s16_44100_stereo.flac")
    w = sio.AudioWriter(None, rate, 2, format="flac")
    w.write(samples)
    back, _ = sio.load_audio(w.close())
    assert np.array_equal(back, samples)
    with pytest.raises(ValueError, match="format="):
        sio.AudioWriter(None, rate, 2)


def test_video_writer_muxes_an_audio_track(tmp_path):
    frames = sio.load_video(FIXTURES / "h264_yuv420p.mp4", size=(160, 120))[:25]
    t = np.arange(48_000, dtype=np.float32) / 48_000
    tone = np.stack([0.5 * np.sin(2 * np.pi * 440 * t)] * 2).astype(np.float32)
    path = tmp_path / "av.mkv"
    with sio.VideoWriter(path, 160, 120, fps=(25, 1), audio_rate=48_000, audio_codec="libopus") as w:
        w.write_audio(tone)
        w.write(frames)
    assert sio.load_video(path).shape == frames.shape
    back, rate = sio.load_audio(path)
    assert rate == 48_000 and abs(back.shape[1] - 48_000) <= 1024
    assert abs(float(np.sqrt(np.mean(back**2))) - 0.5 / np.sqrt(2)) < 0.03
    with pytest.raises(ValueError, match="no audio track"):
        with sio.VideoWriter(tmp_path / "v.mp4", 160, 120) as w:
            w.write_audio(tone)
