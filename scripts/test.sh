#!/usr/bin/env bash
# Second command of the README: every gate and every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
export CARGO_TERM_COLOR=never
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
