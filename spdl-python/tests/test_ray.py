"""spdl_rs.ray on a local Ray cluster started here (2 CPUs, loopback), with a real
S3 server (moto) for the remote rows: every file read exactly once, pixels and
samples equal to spdl_rs.io's, broken files reported per row or raised, never
dropped."""
import os
import socket
import subprocess
import sys
import tarfile

import numpy as np
import pytest
import ray
import ray.data

from spdl_rs import io as sio
from spdl_rs import ray as sray

from conftest import FIXTURES, ROOT

IMAGES = FIXTURES / "images"
EXTENSIONS = ["jpg", "png", "tif", "webp", "gif", "bmp", "ico", "avif"]
BUCKET = "spdl-ray"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    """moto's S3 server holding fixtures/images, then a 2-CPU Ray cluster whose
    workers inherit the AWS_* settings that point at it."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, ROOT / "scripts" / "s3_server.py", "--port", str(port), "--bucket", BUCKET,
         "--relative-to", ROOT, IMAGES],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert server.stdout.readline().strip() == f"ready {port}"
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield f"s3://{BUCKET}/fixtures/images/"
    ray.shutdown()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    server.stdin.close()
    server.wait(timeout=30)


def oracle(path, **kw):
    """spdl_rs.io's answer for one file: (image, "") or (None, its error)."""
    try:
        return sio.load_image(path, **kw), ""
    except Exception as e:  # noqa: BLE001
        return None, str(e)


def by_path(ds):
    rows = ds.take_all()
    paths = [r["path"] for r in rows]
    assert len(paths) == len(set(paths)), "a file was read twice"
    return {r["path"]: r for r in rows}


def test_images_every_file_once_with_spdl_io_pixels(cluster):
    listed = sio.list_dataset(str(IMAGES), EXTENSIONS)
    ds = sray.read_images(str(IMAGES), size=(64, 48), extensions=EXTENSIONS, on_error="column",
                          override_num_blocks=4)
    rows = by_path(ds)
    assert sorted(rows) == sorted(listed)
    broken = 0
    for path, row in rows.items():
        want, error = oracle(path, size=(64, 48))
        assert row["error"] == error, path
        if want is None:
            broken += 1
            assert not row["image"].any(), path
        else:
            assert np.array_equal(row["image"], want), path
    assert broken >= 5  # the truncated, empty and hostile fixtures


def test_a_broken_image_raises_by_default(cluster):
    ds = sray.read_images([str(IMAGES / "jpeg_baseline_420.jpg"), str(IMAGES / "truncated.jpg")])
    with pytest.raises(Exception, match="truncated.jpg"):
        ds.take_all()


def test_images_from_s3_equal_local_ones(cluster):
    ds = sray.read_images(cluster, size=(32, 32), extensions=["jpg", "png"], on_error="column")
    rows = ds.take_all()
    local = sio.list_dataset(str(IMAGES), ["jpg", "png"])
    assert len(rows) == len(local)
    for row in rows:
        path = IMAGES / row["path"].rsplit("/", 1)[1]
        want, error = oracle(str(path), size=(32, 32))
        assert row["error"].replace(row["path"], str(path)) == error
        if want is not None:
            assert np.array_equal(row["image"], want), row["path"]


def test_native_sizes_and_batches(cluster):
    files = [str(IMAGES / "jpeg_baseline_420.jpg"), str(IMAGES / "png_rgba8.png")]
    rows = by_path(sray.read_images(files, size=None))
    for f in files:
        assert np.array_equal(rows[f]["image"], sio.load_image(f))
    batches = list(sray.read_images(files * 3, size=(16, 16)).iter_batches(batch_size=4, batch_format="numpy"))
    assert [b["image"].shape for b in batches] == [(4, 16, 16, 3), (2, 16, 16, 3)]


def test_image_decoder_over_binary_files(cluster):
    files = [str(IMAGES / n) for n in ("jpeg_baseline_420.jpg", "png_rgba8.png", "truncated.jpg")]
    ds = ray.data.read_binary_files(files, include_paths=True)
    out = ds.map_batches(sray.ImageDecoder(size=(40, 30), on_error="column"), batch_format="numpy")
    rows = {os.path.basename(r["path"]): r for r in out.take_all()}
    for f in files:
        want, error = oracle(f, size=(40, 30))
        row = rows[os.path.basename(f)]
        assert (row["error"] != "") == (want is None)
        if want is not None:
            assert np.array_equal(row["image"], want)


def test_videos_and_audio(cluster):
    videos = [str(FIXTURES / n) for n in ("h264_yuv420p.mp4", "vp9_yuv420p.webm", "not_media.mp4")]
    rows = by_path(sray.read_videos(videos, frames=4, size=(32, 24), on_error="column"))
    for v in videos[:2]:
        reader = sio.VideoReader(v, size=(32, 24))
        n = len(reader)
        picks = [(2 * k + 1) * n // 8 for k in range(4)]
        assert rows[v]["error"] == "" and np.array_equal(rows[v]["frames"], reader.get_frames_at(picks)), v
    assert "not_media.mp4" in rows[videos[2]]["error"]
    clips = sray.read_videos(videos[:1], clips=(2, 3), size=(32, 24), seed=5).take_all()[0]["frames"]
    assert np.array_equal(clips, sio.VideoReader(videos[0], size=(32, 24)).get_clips(2, 3, seed=5))
    audio = [str(FIXTURES / "audio" / n) for n in ("flac_s16_44100_stereo.flac", "mp3_cbr_128k_44100_stereo.mp3")]
    rows = by_path(sray.read_audio(audio, sample_rate=16000))
    for a in audio:
        want, rate = sio.load_audio(a, sample_rate=16000)
        assert rows[a]["sample_rate"] == rate and np.array_equal(rows[a]["samples"], want), a


def test_shards_every_sample_once(cluster):
    shards = [str(FIXTURES / "shards" / n) for n in ("shard-000.tar", "shard-001.tar")]
    rows = sray.read_shards(shards, field="jpg;png", size=(24, 24)).take_all()
    expected = {}
    for s in shards:
        with tarfile.open(s) as t:
            for m in t.getmembers():
                key, ext = m.name.split(".", 1)
                expected.setdefault(key, {})[ext] = t.extractfile(m).read()
    assert sorted(r["__key__"] for r in rows) == sorted(expected)
    for r in rows:
        fields = expected[r["__key__"]]
        data = fields.get("jpg", fields.get("png"))
        assert r["error"] == "" and np.array_equal(r["image"], sio.load_image(data, size=(24, 24)))
    broken = str(FIXTURES / "shards" / "broken_truncated.tar")
    with pytest.raises(Exception, match="broken_truncated.tar"):
        sray.read_shards([broken]).take_all()
    rows = sray.read_shards([broken], on_error="column", size=(24, 24)).take_all()
    assert any(r["error"] for r in rows) and all(r["__url__"] == broken for r in rows)
