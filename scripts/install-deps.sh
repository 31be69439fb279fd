#!/usr/bin/env bash
# Installs what spdl-rs needs on Debian 12 (idempotent; quick when present):
# FFmpeg's CLI and development libraries, libtiff's, clang for bindgen, pkg-config,
# and the rustfmt and clippy components.
set -euo pipefail

PKGS=(ffmpeg libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev
      libavfilter-dev libavdevice-dev libtiff-dev clang libclang-dev pkg-config python3-venv cmake nasm python3-pil python3-numpy)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    SUDO=""
    [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    echo "installing: ${missing[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

MSRV=1.89
if ! command -v cargo >/dev/null; then
    [[ -x "$HOME/.cargo/bin/cargo" ]] && export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null; then
    echo "error: cargo not found; install a Rust toolchain (>= $MSRV) with rustup first" >&2
    exit 1
fi
# The MSRV, as rust-version in Cargo.toml states it.
have=$(rustc --version | awk '{print $2}')
if [[ $(printf '%s\n' "$MSRV" "$have" | sort -V | head -1) != "$MSRV" ]]; then
    echo "error: rustc $have is older than spdl-rs's minimum, $MSRV; run: rustup update stable" >&2
    exit 1
fi
if command -v rustup >/dev/null; then
    for c in rustfmt clippy; do
        rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c" >&2
    done
fi
