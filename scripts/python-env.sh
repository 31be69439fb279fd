#!/usr/bin/env bash
# Makes (or updates) .venv-test: maturin, pytest, NumPy, Pillow and moto's S3
# server, pinned in spdl-python/requirements-test.txt. The Rust remote tests
# start the S3 server from it; the Python tests run in it.
set -euo pipefail
cd "$(dirname "$0")/.."
REQS=spdl-python/requirements-test.txt
if [[ ! -x .venv-test/bin/python ]]; then
    python3 -m venv .venv-test
fi
if ! cmp -s "$REQS" .venv-test/.installed 2>/dev/null; then
    .venv-test/bin/pip install -q --disable-pip-version-check -r "$REQS"
    cp "$REQS" .venv-test/.installed
fi
