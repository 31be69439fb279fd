#!/usr/bin/env bash
# Side-by-side image decode benchmark: spdl-rs vs Pillow, OpenCV, simplejpeg,
# PyTurboJPEG and SPDL 0.8, in one run. Extra arguments go to compare_image.py
# (e.g. --repeat 5 --threads 1,2 --json bench-out/compare_image.json).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash benches/setup_python.sh
.venv-bench/bin/python benches/make_images.py
exe=$(cargo bench --bench image_decode --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)
.venv-bench/bin/python benches/compare_image.py --spdl-rs-cmd "$exe" "$@"
