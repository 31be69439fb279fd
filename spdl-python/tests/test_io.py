"""spdl_rs.io against oracles: Pillow for images, the ffmpeg CLI for video, exact
sample counts for audio; plus zero-copy, argument types and exception classes."""
import gc
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageOps

import spdl_rs
from spdl_rs import io as sio

from conftest import FIXTURES


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def pillow_rgb(path):
    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


def lossless(entry):
    return entry["format"] not in ("jpeg", "webp") or "lossless" in entry["file"]


def test_images_match_pillow(image_manifest):
    """Same tolerances as the Rust tests: bit-exact for lossless formats, PSNR >= 40 dB
    for JPEG (libjpeg versions round the IDCT differently)."""
    checked = 0
    for e in image_manifest:
        if e["expect"] != "ok" or e["bit_depth"] == 16 and e["mode"].startswith("I") or e["oracle"] != "pillow":
            continue
        got = sio.load_image(str(FIXTURES / "images" / e["file"]))
        want = pillow_rgb(FIXTURES / "images" / e["file"])
        assert got.shape == want.shape, e["file"]
        if lossless(e):
            assert np.array_equal(got, want), e["file"]
        else:
            assert psnr(got, want) >= 40.0, e["file"]
        checked += 1
    assert checked > 30


def test_sixteen_bit_images_keep_their_samples_with_dtype_uint16(image_manifest):
    """16-bit gray PNGs: dtype="uint16" gives Pillow's 16-bit values, the default
    uint8 their high byte; a bad dtype is a ValueError."""
    checked = 0
    for e in image_manifest:
        if e["expect"] != "ok" or e["bit_depth"] != 16 or not e["mode"].startswith("I") or e["format"] != "png":
            continue
        path = FIXTURES / "images" / e["file"]
        want = np.asarray(Image.open(path), dtype=np.uint16)
        wide = sio.load_image(path, dtype="uint16")
        assert wide.dtype == np.uint16 and np.array_equal(wide[..., 0], want), e["file"]
        assert np.array_equal(sio.load_image(path)[..., 0], (want >> 8).astype(np.uint8)), e["file"]
        checked += 1
    assert checked >= 1
    with pytest.raises(ValueError, match="dtype"):
        sio.load_image(FIXTURES / "images" / "png_rgb8.png", dtype="float32")


def test_every_source_kind_decodes_the_same():
    path = FIXTURES / "images" / "jpeg_baseline_420.jpg"
    data = path.read_bytes()
    want = sio.load_image(str(path))
    for src in (path, str(path), data, memoryview(data), bytearray(data), np.frombuffer(data, np.uint8)):
        assert np.array_equal(sio.load_image(src), want), type(src)


def test_resized_batch_equals_single_loads():
    files = [str(FIXTURES / "images" / f) for f in ("jpeg_baseline_420.jpg", "png_rgb8.png", "jpeg_gray.jpg")]
    batch = sio.load_image_batch(files, size=(64, 48), num_threads=2)
    assert batch.shape == (3, 48, 64, 3) and batch.dtype == np.uint8
    for i, f in enumerate(files):
        assert np.array_equal(batch[i], sio.load_image(f, size=(64, 48)))
    bad = str(FIXTURES / "images" / "truncated.png")
    images, failures = sio.load_image_batch(files + [bad], size=(64, 48), on_error="skip")
    assert images.shape[0] == 3
    assert len(failures) == 1 and failures[0][0] == bad
    # In-memory inputs are named by their position in the list.
    blobs = [open(f, "rb").read() for f in files] + [open(bad, "rb").read()]
    images, failures = sio.load_image_batch(blobs, size=(64, 48), on_error="skip")
    assert np.array_equal(images, batch)
    assert [f[0] for f in failures] == ["<bytes #3>"], failures


def ffmpeg_rgb(path, width, height):
    out = subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        check=True,
        capture_output=True,
    ).stdout
    return np.frombuffer(out, np.uint8).reshape(-1, height, width, 3)


def test_video_matches_ffmpeg_and_sampling_matches_full_decode():
    path = FIXTURES / "h264_yuv420p.mp4"
    frames, pts = sio.load_video(path, return_pts=True)
    want = ffmpeg_rgb(path, frames.shape[2], frames.shape[1])
    assert np.array_equal(frames, want)
    assert len(pts) == len(frames) and np.all(np.diff(pts) > 0)
    picked = sio.sample_frames(path, [5, 0, 5, 12])
    assert np.array_equal(picked, frames[[5, 0, 5, 12]])
    chunks = list(sio.stream_video(path, 7))
    assert np.array_equal(np.concatenate(chunks), frames)


def test_audio_sample_counts_are_exact():
    path = FIXTURES / "audio" / "flac_s16_44100_stereo.flac"
    samples, rate = sio.load_audio(path)
    assert rate == 44100 and samples.dtype == np.float32 and samples.shape[0] == 2
    probed = sio.info(path)
    declared = probed["streams"][0]["duration"]
    assert abs(samples.shape[1] - round(declared * rate)) <= 1
    resampled, rate16 = sio.load_audio(path, sample_rate=16000, channels=1)
    assert rate16 == 16000 and resampled.shape[0] == 1
    chunks = list(sio.stream_audio(path, 4096))
    assert np.array_equal(np.concatenate(chunks, axis=1), samples)
    # Both backends decode FLAC to the same samples.
    for backend in ("ffmpeg", "symphonia"):
        assert np.array_equal(sio.load_audio(path, backend=backend)[0], samples), backend
    with pytest.raises(ValueError, match="backend"):
        sio.load_audio(path, backend="nope")
    wav = FIXTURES / "audio" / "pcm_s24le_48000_stereo.wav"
    assert np.array_equal(sio.load_audio(wav, backend="pcm")[0], sio.load_audio(wav, backend="ffmpeg")[0])


def test_arrays_own_the_rust_buffer_without_a_copy():
    image = sio.load_image(FIXTURES / "images" / "png_rgb8.png")
    assert image.flags.c_contiguous and image.flags.owndata is False
    base = image.base
    assert type(base).__name__ == "PySliceContainer"
    view = image[10:20]
    del image
    gc.collect()
    assert view.base is not None and view.sum() >= 0  # the buffer outlives the first array
    assert np.shares_memory(view, np.asarray(view))


def test_exception_classes():
    with pytest.raises(FileNotFoundError, match="no_such.jpg"):
        sio.load_image("/definitely/no_such.jpg")
    with pytest.raises(ValueError):
        sio.load_image(FIXTURES / "images" / "png_rgb8.png", pix_fmt="nonsense")
    with pytest.raises(spdl_rs.DecodeError, match="not_image.png") as info:
        sio.load_image(FIXTURES / "images" / "not_image.png")
    assert isinstance(info.value, RuntimeError)
    with pytest.raises(spdl_rs.LimitError, match="bomb"):
        sio.load_image(FIXTURES / "images" / "bomb_100000x100000.png")
    with pytest.raises(ValueError, match="frame index"):
        sio.sample_frames(FIXTURES / "h264_yuv420p.mp4", [10**6])
    with pytest.raises(TypeError):
        sio.load_image(12345)


def test_misuse_is_refused_with_a_clear_exception():
    img = str(FIXTURES / "images" / "jpeg_baseline_420.jpg")
    video = FIXTURES / "h264_yuv420p.mp4"
    with pytest.raises(TypeError, match="not a single source"):
        sio.load_image_batch(img, size=(8, 8))  # a str is not a list of sources
    with pytest.raises(ValueError, match="size must be 1..=65536"):
        sio.load_image_batch([img], size=(0, 0))
    with pytest.raises(spdl_rs.LimitError):
        sio.load_image_batch([img], size=(65536, 65536))
    with pytest.raises(ValueError, match="num_threads"):
        sio.load_image_batch([img], size=(8, 8), num_threads=10**6)
    with pytest.raises(ValueError, match="time window"):
        sio.load_video(video, start=float("nan"), end=1.0)
    with pytest.raises(ValueError, match="time window"):
        list(sio.stream_video(video, 4, start=1.5, end=0.5))


SIGINT_DURING_BATCH = """
import os, signal, sys, threading, time
import spdl_rs.io as sio
threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
t0 = time.monotonic()
try:
    sio.load_image_batch([sys.argv[1]] * 100000, size=(8, 8), num_threads=2)
    print("finished")
except KeyboardInterrupt:
    print("interrupted %.1f" % (time.monotonic() - t0))
"""


def test_ctrl_c_stops_a_long_batch():
    img = str(FIXTURES / "images" / "jpeg_progressive.jpg")
    out = subprocess.run([sys.executable, "-c", SIGINT_DURING_BATCH, img], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    # 100,000 decodes take minutes here; the interrupt lands within the 50 ms polling.
    assert out.stdout.startswith("interrupted"), out.stdout + out.stderr


def test_no_threads_at_import():
    def threads_after(imports):
        code = f"import os, {imports}; print(len(os.listdir('/proc/self/task')))"
        return int(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)

    # NumPy's BLAS may start its own threads; spdl_rs must add none.
    assert threads_after("numpy, spdl_rs, spdl_rs.io, spdl_rs.pipeline") == threads_after("numpy")


def test_fork_after_use_decodes_in_the_child():
    files = [str(FIXTURES / "images" / "jpeg_baseline_420.jpg")] * 4
    want = sio.load_image_batch(files, size=(32, 32), num_threads=2)  # starts the pool
    pid = os.fork()
    if pid == 0:  # child: the parent's pool has no threads here
        try:
            got = sio.load_image_batch(files, size=(32, 32), num_threads=2)
            os._exit(0 if np.array_equal(got, want) else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_stream_opened_before_fork_is_not_moved_by_the_child():
    # An open file's offset is shared across fork(); reads must not depend on it.
    video = str(FIXTURES / "long_h264.mp4")
    want = np.concatenate(list(sio.stream_video(video, 5, size=(16, 16))))
    chunks = sio.stream_video(video, 5, size=(16, 16))
    got = [next(chunks)]
    pid = os.fork()
    if pid == 0:  # child: reads the rest of the same stream, then exits
        try:
            for _ in chunks:
                pass
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    got.extend(chunks)
    assert np.array_equal(np.concatenate(got), want)


def test_untrusted_formats_are_refused_unless_trusted_input(tmp_path):
    """A playlist named like a video reads nothing but itself by default."""
    segment = FIXTURES / "mpeg2_yuv420p.ts"
    clip = tmp_path / "clip.mp4"
    clip.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:1.0,\nfile://{segment}\n#EXT-X-ENDLIST\n")
    with pytest.raises(spdl_rs.DecodeError, match="`hls`.*trusted_input"):
        sio.load_video(str(clip))
    with pytest.raises(spdl_rs.DecodeError, match="`hls`"):
        sio.info(str(clip))
    frames = sio.load_video(str(clip), trusted_input=True)
    assert frames.shape[0] > 0
    assert sio.info(str(clip), trusted_input=True)["format"] == "hls"
    concat = f"ffconcat version 1.0\nfile '{FIXTURES / 'audio' / 'pcm_s16le_16000_mono.wav'}'\n".encode()
    with pytest.raises(spdl_rs.DecodeError, match="`concat`"):
        sio.load_audio(concat)


def test_a_decoder_panic_is_a_decode_error_never_a_panic_exception():
    """The tiff crate panics on this file and libtiff refuses it; Python sees
    DecodeError (an Exception)."""
    bad = str(FIXTURES / "images" / "tiff_tiled_planar_short_tile.tif")
    with pytest.raises(spdl_rs.DecodeError, match="panicked"):
        sio.load_image(bad)
    good = str(FIXTURES / "images" / "png_rgb8.png")
    images, failures = sio.load_image_batch([good, bad], size=(16, 16), on_error="skip")
    assert images.shape == (1, 16, 16, 3)
    assert [name for name, _ in failures] == [bad]


def test_filter_desc_matches_the_ffmpeg_cli():
    path = FIXTURES / "h264_yuv420p.mp4"
    chain = "crop=120:80:10:20,hflip"
    frames = sio.load_video(path, filter_desc=chain)
    out = subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(path), "-vf", chain, "-sws_flags", "bilinear",
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        check=True, capture_output=True,
    ).stdout
    assert np.array_equal(frames, np.frombuffer(out, np.uint8).reshape(frames.shape)) and frames.shape[1:] == (80, 120, 3)
    assert np.array_equal(np.concatenate(list(sio.stream_video(path, 16, filter_desc=chain))), frames)
    with pytest.raises(ValueError, match="nosuchfilter.*h264_yuv420p.mp4|h264_yuv420p.mp4.*nosuchfilter"):
        sio.load_video(path, filter_desc="nosuchfilter")
    with pytest.raises(ValueError, match="fps"):
        sio.load_video(path, filter_desc="hflip", fps=(10, 1))


def test_audio_filter_desc_matches_the_ffmpeg_cli():
    path = FIXTURES / "audio" / "flac_s16_44100_stereo.flac"
    chain = "aresample=16000,volume=0.5"
    samples, rate = sio.load_audio(path, filter_desc=chain, layout="interleaved")
    out = subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(path), "-af", chain, "-f", "f32le", "-"],
        check=True, capture_output=True,
    ).stdout
    want = np.frombuffer(out, np.float32).reshape(-1, 2)
    assert rate == 16000 and samples.shape == want.shape and np.max(np.abs(samples - want)) <= 1e-6
    with pytest.raises(ValueError, match="nosuchfilter"):
        sio.load_audio(path, filter_desc="nosuchfilter")


def test_cuda_device_decodes_or_falls_back_to_the_cpu_frames():
    """Without a usable GPU, device="cuda:0" decodes on the CPU: the same
    frames. (On a GPU machine NVDEC's frames differ by rounding only.)"""
    path = FIXTURES / "h264_yuv420p.mp4"
    cpu = sio.load_video(path)
    gpu = sio.load_video(path, device="cuda:0")
    assert gpu.shape == cpu.shape
    if GPU:
        assert psnr(gpu, cpu) >= 40
    else:
        assert np.array_equal(gpu, cpu)
    with pytest.raises(ValueError, match="cuda:N"):
        sio.load_video(path, device="tpu")


GPU = pathlib.Path("/dev/nvidiactl").exists()
