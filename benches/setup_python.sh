#!/usr/bin/env bash
# Create/refresh the Python venv used by benches/compare_video.py.
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
)

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

# Smoke test: decode a tiny generated H.264 clip with spdl.io and PyAV. spdl.io
# dlopens the system libav* lazily, so importing it alone proves nothing.
TMP_CLIP="$(mktemp --suffix=.mp4)"
trap 'rm -f "$TMP_CLIP"' EXIT
ffmpeg -hide_banner -nostdin -loglevel error -y -f lavfi -i testsrc2=size=64x48:rate=30 \
  -frames:v 10 -c:v libx264 -pix_fmt yuv420p "$TMP_CLIP"
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
