#!/usr/bin/env bash
# The Python comparison harness: makes .venv-bench (benches/setup_python.sh:
# Pillow, opencv-python-headless, simplejpeg, PyTurboJPEG, PyAV, SPDL 0.8),
# adds soundfile, matplotlib and spdl_rs (built with maturin, release), makes
# the media, then runs compare.py. Results: bench-out/python/compare.{json,md,png}.
#
#   bash benches/python/run.sh [compare.py args, e.g. --rounds 9 --threads 1 2]
set -euo pipefail
cd "$(dirname "$0")/../.."
bash benches/setup_python.sh
VENV=.venv-bench
"$VENV/bin/pip" install -q --disable-pip-version-check -r benches/python/requirements.txt
(
    source "$VENV/bin/activate"
    PYO3_PYTHON="$VIRTUAL_ENV/bin/python" maturin develop --release -q -m spdl-python/Cargo.toml
)
[[ -d bench-out/images/jpeg ]] || "$VENV/bin/python" benches/make_images.py
[[ -f bench-out/h264_720p.mp4 ]] || bash benches/make_media.sh
"$VENV/bin/python" benches/python/compare.py "$@"
