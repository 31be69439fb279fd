"""Living beside other media wheels in one process: a library loaded earlier
with RTLD_GLOBAL that defines the same C symbols as the libraries spdl_rs links
(decord's bundled dav1d, FFmpeg, libvpx) must not replace them."""

import shutil
import subprocess
import sys

import numpy as np
import pytest

import spdl_rs.io as sio
from conftest import FIXTURES

# A stand-in for a bundled dav1d of another version: the same entry point,
# failing every call.
SHIM = "int dav1d_open(void **ctx, const void *settings) { (void)ctx; (void)settings; return -22; }\n"

SCRIPT = """
import ctypes, os, sys
ctypes.CDLL(sys.argv[1], mode=os.RTLD_NOW | ctypes.RTLD_GLOBAL)
import numpy as np
import spdl_rs.io as sio
np.save(sys.argv[3], sio.load_video(sys.argv[2]))
"""


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler to build the stand-in library")
def test_a_globally_loaded_library_does_not_replace_our_dav1d(tmp_path):
    clip = FIXTURES / "av1_yuv420p.mp4"
    expected = sio.load_video(clip)
    (tmp_path / "shim.c").write_text(SHIM)
    shim = tmp_path / "libshim.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", shim, tmp_path / "shim.c"], check=True)
    out = tmp_path / "frames.npy"
    run = subprocess.run([sys.executable, "-c", SCRIPT, shim, clip, out], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    np.testing.assert_array_equal(np.load(out), expected)
