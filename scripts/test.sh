#!/usr/bin/env bash
# Second command of the README: every gate and every test, Rust and Python.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/python-env.sh
export CARGO_TERM_COLOR=never
# One interpreter for every pyo3 build (clippy and maturin), so switching
# between them does not rebuild pyo3.
export PYO3_PYTHON="$PWD/.venv-test/bin/python"
cargo fmt --all --check
# Layers: no import cycles, imports only downwards, unsafe only at the FFI edge.
python3 scripts/check_layers.py spdl-io/src
python3 scripts/check_layers.py spdl-pipeline/src
cargo clippy --workspace --all-targets -- -D warnings
# The heavy optional parts of spdl-io are features; it builds without them.
cargo clippy -p spdl-io --no-default-features --lib -- -D warnings
# The extension is tested from Python below (it links to the interpreter).
cargo test --workspace --exclude spdl-python
# NVDEC decoding (feature `cuda`): here it must fall back to the CPU's frames.
cargo test -p spdl-io --features cuda --test device
# A short mutation-fuzz run, fixed seed, under a memory cap (the long run:
# bash scripts/fuzz.sh --count 20000).
PROFILE=debug bash scripts/fuzz.sh --seed 1 --count 3000
# Build the wheel users install (abi3, FFmpeg bundled), install it into the
# venv and run the Python tests on it (test_wheel.py also installs it into a
# fresh venv).
(
    source .venv-test/bin/activate
    SPDL_WHEEL=$(python scripts/build_wheel.py)
    export SPDL_WHEEL
    pip install -q --disable-pip-version-check --force-reinstall --no-deps "$SPDL_WHEEL"
    python -m pytest -q spdl-python/tests
)
