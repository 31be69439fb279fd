#!/usr/bin/env bash
# Generate the benchmark media used by benches/compare_video.py.
#
#   bash benches/make_media.sh            # writes into bench-out/ (git-ignored)
#   OUT_DIR=/tmp/media bash benches/make_media.sh
#   FORCE=1 bash benches/make_media.sh    # regenerate even if files exist
#
# Content: FFmpeg's `testsrc2` (moving pattern, counters, colour bars) plus
# mild temporal noise (seeded, so deterministic) so the streams are not
# trivially compressible: about 4 Mbit/s at 720p with CRF 23 (x264's default),
# which is in the range of ordinary web video. Encoding uses a fixed x264 thread
# count and bitexact flags so the same FFmpeg build reproduces the same bytes.
#
# Files:
#   h264_720p.mp4   1280x720,  300 frames, 30 fps, GOP 60, 3 B-frames
#   h264_1080p.mp4  1920x1080, 300 frames, 30 fps, GOP 60, 3 B-frames
#   h264_10s.mp4    1280x720,  10 s (300 frames), 30 fps, GOP 30, 3 B-frames
# All: libx264 preset medium, yuv420p, closed GOPs, fixed keyframe interval
# (scene-cut detection off), no audio. ~1 min on 2 cores for all three.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT_DIR="${OUT_DIR:-$ROOT/bench-out}"
FFMPEG="${FFMPEG:-ffmpeg}"
mkdir -p "$OUT_DIR"

# make NAME WIDTH HEIGHT FRAMES GOP
make() {
  local name="$1" w="$2" h="$3" frames="$4" gop="$5"
  local out="$OUT_DIR/$name"
  if [[ -s "$out" && -z "${FORCE:-}" ]]; then
    echo "[make_media] exists, skipping: $out" >&2
    return
  fi
  echo "[make_media] generating $out (${w}x${h}, $frames frames, GOP $gop)" >&2
  local tmp="$out.tmp.mp4"
  "$FFMPEG" -hide_banner -nostdin -loglevel error -y \
    -f lavfi -i "testsrc2=size=${w}x${h}:rate=30,noise=alls=6:allf=t:all_seed=12345" \
    -frames:v "$frames" \
    -c:v libx264 -preset medium -pix_fmt yuv420p \
    -g "$gop" -keyint_min "$gop" -sc_threshold 0 -bf 3 \
    -threads 2 \
    -map_metadata -1 -fflags +bitexact -flags:v +bitexact \
    "$tmp"
  mv -f "$tmp" "$out"
}

make h264_720p.mp4  1280 720  300 60
make h264_1080p.mp4 1920 1080 300 60
make h264_10s.mp4   1280 720  300 30

for f in h264_720p.mp4 h264_1080p.mp4 h264_10s.mp4; do
  ffprobe -v error -select_streams v:0 \
    -show_entries stream=codec_name,width,height,nb_frames,bit_rate,r_frame_rate \
    -of compact=p=0:nk=0 "$OUT_DIR/$f" | sed "s|^|[make_media] $f: |" >&2
done
