#!/usr/bin/env bash
# First command of the README: install what is missing, then run the main
# job (decode every bundled fixture and print frames and frames/s per file).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo run --release -q -p spdl-cli -- bench fixtures "$@"
