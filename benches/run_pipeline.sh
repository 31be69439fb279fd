#!/usr/bin/env bash
# Pipeline overhead side by side: spdl-rs vs SPDL 0.8's Python pipeline.
# Extra arguments go to compare_pipeline.py (e.g. --items 100000 --repeat 3).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash benches/setup_python.sh
exe=$(cargo bench --bench pipeline_overhead --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)
.venv-bench/bin/python benches/compare_pipeline.py --spdl-rs-cmd "$exe" "$@"
