#!/usr/bin/env bash
# Create/refresh the Python venv used by benches/compare_video.py and
# benches/compare_image.py (+ benches/make_images.py).
#
#   bash benches/setup_python.sh          # creates .venv-bench at the repo root
#   PYTHON=python3.12 bash benches/setup_python.sh
#   VENV=/some/where bash benches/setup_python.sh
#
# Idempotent: if the venv already holds exactly the pinned versions it skips
# pip and only re-runs the decode smoke test (a second or two).
#
# Notes on SPDL 0.8.0:
#   * `spdl` itself is a tiny meta wheel that depends on `spdl_io` and
#     `spdl_core` (unpinned), so both are pinned here explicitly.
#   * `spdl_io` (cp311 manylinux wheel) ships its native extension for several
#     FFmpeg majors (libspdl_ffmpeg4..9.so) and dlopens the *system* FFmpeg
#     shared libs (libavcodec.so.59 etc. for FFmpeg 5.1 on Debian 12). It
#     bundles no FFmpeg, so the FFmpeg runtime libraries must be installed
#     (they come with Debian's `ffmpeg` package).
#   * PyAV (`av`) binary wheels bundle their own FFmpeg (8.1.x for av 18.1.0),
#     i.e. NOT the system 5.1 used by the CLI, SPDL and spdl-rs.
#   * SPDL 0.8 decodes images with the same system FFmpeg (mjpeg/png decoders
#     + swscale), not with libjpeg-turbo. `spdl.io.load_image_batch` has no
#     thread/executor parameter: it loops over the sources in Python (the
#     native demux/decode/convert calls release the GIL); parallelism comes from
#     the caller's executor or from `spdl.pipeline` (`pipe(..., concurrency=N)`,
#     `build(num_threads=N)`). See benches/compare_image.py.
#
# Image peers (compare_image.py):
#   * Pillow, opencv-python-headless and simplejpeg wheels bundle their own
#     libjpeg-turbo (3.x) / zlib(-ng) / libpng.
#   * PyTurboJPEG is pure ctypes over the *system* libturbojpeg. Debian 12
#     ships libjpeg-turbo 2.1.5 (package libturbojpeg0), and PyTurboJPEG >= 2.0
#     refuses anything older than libjpeg-turbo 3.0, so it is pinned to the last
#     1.x. The Debian package is installed here with apt-get when missing
#     (needs root; otherwise it tells you the command).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv-bench}"
PYTHON="${PYTHON:-python3}"

# Pinned versions. Keep in sync with the bench report.
PINS=(
  "spdl==0.8.0"
  "spdl-io==0.8.0"
  "spdl-core==0.8.0"
  "av==18.1.0"
  "numpy==2.4.6"
  "pillow==13.0.0"
  "opencv-python-headless==5.0.0.93"
  "simplejpeg==1.9.0"
  "PyTurboJPEG==1.8.3"
)

# System libturbojpeg for PyTurboJPEG.
if ! /sbin/ldconfig -p 2>/dev/null | grep -q 'libturbojpeg\.so'; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    echo "[setup_python] installing libturbojpeg0 (apt-get)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q libturbojpeg0 >&2 \
      || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libturbojpeg0 >&2; }
  else
    echo "[setup_python] ERROR: libturbojpeg not found; run: sudo apt-get install libturbojpeg0" >&2
    exit 1
  fi
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "[setup_python] creating venv at $VENV" >&2
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"

# Fast path: all pins already satisfied? (one interpreter start, no pip)
CHECK_PINS='
import importlib.metadata as md, sys
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    try:
        if md.version(name) != want:
            sys.exit(1)
    except md.PackageNotFoundError:
        sys.exit(1)
'
if "$PY" -c "$CHECK_PINS" "${PINS[@]}"; then
  echo "[setup_python] pinned packages already installed in $VENV" >&2
else
  echo "[setup_python] installing: ${PINS[*]}" >&2
  "$PY" -m pip install --disable-pip-version-check -q "${PINS[@]}"
fi

# Smoke test: decode a tiny generated H.264 clip with spdl.io and PyAV, and a
# tiny JPEG + PNG with every image peer. spdl.io dlopens the system libav*
# lazily, so importing it alone proves nothing.
TMP_DIR="$(mktemp -d)"
trap 'rm -rf "$TMP_DIR"' EXIT
TMP_CLIP="$TMP_DIR/clip.mp4"
ffmpeg -hide_banner -nostdin -loglevel error -y -f lavfi -i testsrc2=size=64x48:rate=30 \
  -frames:v 10 -c:v libx264 -pix_fmt yuv420p "$TMP_CLIP"
ffmpeg -hide_banner -nostdin -loglevel error -y -f lavfi -i testsrc2=size=64x48 \
  -frames:v 1 -pix_fmt yuvj420p "$TMP_DIR/img.jpg"
ffmpeg -hide_banner -nostdin -loglevel error -y -f lavfi -i testsrc2=size=64x48 \
  -frames:v 1 -pix_fmt rgb24 "$TMP_DIR/img.png"
SMOKE='
import importlib.metadata as md, sys
import av, numpy as np, spdl.io
clip = sys.argv[1]
a = spdl.io.to_numpy(spdl.io.load_video(
    clip, decode_config=spdl.io.decode_config(decoder_options={"threads": "1"})))
assert a.shape == (10, 48, 64, 3) and a.dtype == np.uint8, a.shape
with av.open(clip) as c:
    n = sum(1 for _ in c.decode(video=0))
assert n == 10, n
pyav_ff = getattr(av, "ffmpeg_version_info", "?")
print("[setup_python] ok:",
      ", ".join(f"{p}=={md.version(p)}" for p in ("spdl", "spdl-io", "spdl-core", "av", "numpy")),
      f"| spdl.io decoded {a.shape} | PyAV bundles FFmpeg {pyav_ff}")
'
"$PY" -c "$SMOKE" "$TMP_CLIP"

IMG_SMOKE='
import importlib.metadata as md, sys
import cv2, numpy as np, simplejpeg, spdl.io
from PIL import Image
from turbojpeg import TJPF_RGB, TurboJPEG
jpg, png = sys.argv[1], sys.argv[2]
buf = open(jpg, "rb").read()
ref = np.asarray(Image.open(jpg).convert("RGB"))
outs = {
    "opencv": cv2.imdecode(np.frombuffer(buf, np.uint8), cv2.IMREAD_COLOR_RGB),
    "simplejpeg": simplejpeg.decode_jpeg(buf, colorspace="RGB"),
    "turbojpeg": TurboJPEG().decode(buf, pixel_format=TJPF_RGB),
    "spdl": spdl.io.to_numpy(spdl.io.load_image(jpg, filter_desc="format=pix_fmts=rgb24")),
}
assert ref.shape == (48, 64, 3), ref.shape
for k, v in outs.items():
    assert v.shape == ref.shape and v.dtype == np.uint8, (k, v.shape, v.dtype)
    assert np.abs(v.astype(int) - ref).mean() < 8, (k, "pixels far from Pillow")
p = np.asarray(Image.open(png).convert("RGB"))
for k, v in {"opencv": cv2.imdecode(np.fromfile(png, np.uint8), cv2.IMREAD_COLOR_RGB),
             "spdl": spdl.io.to_numpy(spdl.io.load_image(png, filter_desc="format=pix_fmts=rgb24"))}.items():
    assert np.array_equal(v, p), (k, "PNG differs from Pillow")
print("[setup_python] ok:",
      ", ".join(f"{p}=={md.version(p)}" for p in ("pillow", "opencv-python-headless", "simplejpeg", "PyTurboJPEG")),
      "| JPEG 64x48 decoded by Pillow/OpenCV/simplejpeg/PyTurboJPEG/SPDL, PNG by Pillow/OpenCV/SPDL")
'
"$PY" -c "$IMG_SMOKE" "$TMP_DIR/img.jpg" "$TMP_DIR/img.png"
