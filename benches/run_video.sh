#!/usr/bin/env bash
# Side-by-side video decode benchmark: spdl-rs vs the ffmpeg CLI, SPDL 0.8
# and PyAV, in one run. Extra arguments go to compare_video.py
# (e.g. --repeat 5 --threads 1,2 --json bench-out/compare.json).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash benches/setup_python.sh
bash benches/make_media.sh
exe=$(cargo bench --bench video_decode --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)
.venv-bench/bin/python benches/compare_video.py --spdl-rs-cmd "$exe" "$@"
