#!/usr/bin/env bash
# `spdl bench` on a 1000-image ImageNet-like set (10 class folders) read from
# local disk, from moto's S3 server, and from the same server behind a proxy
# adding 20 ms per request; interleaved rounds, items/s medians and ratios.
#
#   bash benches/s3/run.sh [ROUNDS] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
THREADS=${2:-2}
bash scripts/python-env.sh
[[ -d bench-out/images/jpeg ]] || .venv-bench/bin/python benches/make_images.py
SET=bench-out/imagenet1k
if [[ ! -d $SET ]]; then
    mapfile -t JPEGS < <(ls bench-out/images/jpeg/*.jpg | sort)
    for i in $(seq 0 999); do
        class=$(printf "n%08d" $((i % 10)))
        mkdir -p "$SET/$class"
        cp "${JPEGS[$((i % ${#JPEGS[@]}))]}" "$SET/$class/$(printf %05d $i).jpg"
    done
fi
cargo build --release -q -p spdl-cli
PY=.venv-test/bin/python
exec 3< <(sleep infinity)  # the servers' stdin: closed when this script exits
$PY scripts/s3_server.py --port 9000 --bucket bench "$SET" <&3 > /tmp/s3bench.ready &
S3=$!
$PY benches/s3/latency_proxy.py --listen 9100 --target 9000 --delay-ms 20 > /tmp/proxy.ready &
PROXY=$!
trap 'kill $S3 $PROXY 2>/dev/null' EXIT
until grep -q ready /tmp/s3bench.ready 2>/dev/null; do sleep 0.5; done
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
bench() { ./target/release/spdl bench "$@" --kind image --threads "$THREADS" --json; }
rate() { python3 -c 'import json,sys; print(json.load(sys.stdin)["items_per_second"])'; }
for round in $(seq "$ROUNDS"); do
    local_rate=$(bench "$SET" | rate)
    s3_rate=$(AWS_ENDPOINT_URL=http://127.0.0.1:9000 bench s3://bench/bench-out/imagenet1k/ | rate)
    slow_rate=$(AWS_ENDPOINT_URL=http://127.0.0.1:9100 bench s3://bench/bench-out/imagenet1k/ | rate)
    echo "round $round: local $local_rate  s3 $s3_rate  s3+20ms $slow_rate items/s"
done
