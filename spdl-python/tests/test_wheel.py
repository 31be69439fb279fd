"""The installable wheel (scripts/build_wheel.py; scripts/test.sh builds it and
sets SPDL_WHEEL): auditwheel finds a manylinux policy, every FFmpeg library
the extension loads comes from the wheel, the licences of what it bundles are
in it, and installed into a fresh virtual environment (no compiler, no FFmpeg
dev packages used) it decodes an image, a video and an audio file."""

import os
import pathlib
import subprocess
import sys
import venv
import zipfile

import pytest

from conftest import FIXTURES

WHEEL = os.environ.get("SPDL_WHEEL")
pytestmark = pytest.mark.skipif(not WHEEL, reason="SPDL_WHEEL unset: scripts/test.sh builds the wheel and sets it")

CHECK = """
import sys, spdl_rs
from spdl_rs import io as sio
fixtures = sys.argv[1]
img = sio.load_image(fixtures + "/images/jpeg_baseline_420.jpg")
vid = sio.load_video(fixtures + "/h264_yuv420p.mp4", size=(64, 48))
wav, rate = sio.load_audio(fixtures + "/audio/flac_s16_44100_stereo.flac")
print(img.shape, vid.shape, wav.shape, rate, spdl_rs.__file__)
"""


def test_auditwheel_finds_a_manylinux_policy():
    out = subprocess.run([sys.executable, "-m", "auditwheel", "show", WHEEL], capture_output=True, text=True, check=True)
    assert 'platform tag: "manylinux_' in " ".join(out.stdout.split()), out.stdout


def test_the_wheel_names_what_it_bundles():
    with zipfile.ZipFile(WHEEL) as z:
        names = z.namelist()
        libs = [n for n in names if n.startswith("spdl_rs.libs/")]
        bundled = z.read(next(n for n in names if n.endswith("licenses/BUNDLED.txt"))).decode()
    assert any("/libavcodec-" in n for n in libs), libs
    for lib in libs:
        assert pathlib.PurePath(lib).name in bundled, f"{lib} is not listed in BUNDLED.txt"
    assert any(n.endswith("licenses/LICENSE-MIT") for n in names)


def test_a_fresh_venv_installs_and_decodes(tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", WHEEL], check=True)
    # Run from an empty folder, so only the installed package can be imported.
    out = subprocess.run([python, "-c", CHECK, str(FIXTURES)], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "(240, 320, 3) (" in out.stdout and str(env_dir) in out.stdout, out.stdout
    native = next((env_dir / "lib").glob("python3*/site-packages/spdl_rs/_native*.so"))
    ldd = subprocess.run(["ldd", native], capture_output=True, text=True, check=True).stdout
    ffmpeg = [line for line in ldd.splitlines() if "libav" in line or "libsw" in line]
    assert len(ffmpeg) >= 5, ldd
    assert all("spdl_rs.libs" in line for line in ffmpeg), "\n".join(ffmpeg)
