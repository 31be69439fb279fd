#!/usr/bin/env bash
# The PyTorch end-to-end benchmark (benches/python/e2e_torch.py) and the venv it
# needs: .venv-torch at the repo root with torch (from PyPI: the CUDA build, ~5.5 GB
# installed), NumPy, Pillow, pytest and SPDL 0.8, kept apart from .venv-test (CI's,
# which has no torch) and .venv-bench. spdl_rs is NOT built here: it is imported from
# the source tree (PYTHONPATH=spdl-python/python), so the extension
# spdl-python/python/spdl_rs/_native.cpython-311-*.so must already be there
# (`maturin develop` puts it there), and the venv's Python must be 3.11.
#
#   bash benches/python/run_torch.sh                          # --rounds 5 --threads 1 2
#   bash benches/python/run_torch.sh --rounds 3 --threads 2   # e2e_torch.py args
#   bash benches/python/run_torch.sh --video-reader --rounds 3  # video_reader.py (VideoReader vs
#                                                              # torchcodec 0.17 and decord2)
#   SETUP_ONLY=1 bash benches/python/run_torch.sh             # venv only
#
# The tests of spdl_rs.torch run in the same venv:
#   PYTHONPATH=spdl-python/python:spdl-python/tests .venv-torch/bin/python -m pytest -q spdl-python/tests/test_torch.py
#
# Results: bench-out/python/e2e_torch.json and a markdown table on stdout. The
# 1,024 JPEGs (bench-out/images/e2e) are made on the first run (~3 min, one core).
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=.venv-torch
PYTHON="${PYTHON:-python3}"
PINS=(
  "torch==2.15.0"
  "torchcodec==0.17.0"
  "decord2==3.4.0"
  "numpy==2.4.6"
  "pillow==13.0.0"
  "pytest==9.2.0"
  "spdl==0.8.0"
  "spdl-io==0.8.0"
  "spdl-core==0.8.0"
)

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "[run_torch] creating $VENV" >&2
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "[run_torch] ERROR: $VENV has Python $("$PY" -c 'import platform; print(platform.python_version())');" \
       "the in-tree spdl_rs extension is built for CPython 3.11 (set PYTHON=python3.11)" >&2
  exit 1
fi

CHECK_PINS='
import importlib.metadata as md, sys
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    try:
        if md.version(name).split("+")[0] != want:
            sys.exit(1)
    except md.PackageNotFoundError:
        sys.exit(1)
'
if "$PY" -c "$CHECK_PINS" "${PINS[@]}"; then
  echo "[run_torch] pinned packages already installed in $VENV" >&2
else
  echo "[run_torch] installing: ${PINS[*]}" >&2
  "$PY" -m pip install --disable-pip-version-check -q "${PINS[@]}"
fi

# SPDL 0.8 dlopens the system FFmpeg libraries (Debian: the ffmpeg package).
if ! /sbin/ldconfig -p 2>/dev/null | grep -q 'libavcodec\.so'; then
  echo "[run_torch] ERROR: no system libavcodec for SPDL 0.8: apt-get install ffmpeg" >&2
  exit 1
fi

export PYTHONPATH="$PWD/spdl-python/python${PYTHONPATH:+:$PYTHONPATH}"
if ! compgen -G "spdl-python/python/spdl_rs/_native.cpython-311-*.so" >/dev/null; then
  echo "[run_torch] ERROR: spdl_rs is not built in the tree; build it first, e.g." \
       "'source .venv-test/bin/activate && maturin develop --release -m spdl-python/Cargo.toml'" >&2
  exit 1
fi
"$PY" -c 'import spdl_rs.torch, torch, spdl.io; print("[run_torch] ok: torch", torch.__version__, "| spdl_rs from", spdl_rs.torch.__file__)' >&2
[[ -n "${SETUP_ONLY:-}" ]] && exit 0

SCRIPT=benches/python/e2e_torch.py
if [[ "${1:-}" == "--video-reader" ]]; then
  SCRIPT=benches/python/video_reader.py
  shift
fi
if [[ $# -eq 0 ]]; then
  set -- --rounds 5 --threads 1 2
fi
"$PY" "$SCRIPT" "$@"
