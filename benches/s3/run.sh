#!/usr/bin/env bash
# `spdl bench` on a 1000-image ImageNet-like set (10 class folders) read from
# local disk, from an S3 server on this machine, and from the same server
# behind a proxy adding 20 ms per request; interleaved rounds, items/s.
#
#   bash benches/s3/run.sh [ROUNDS] [THREADS]              # moto's server (Python)
#   SERVER=s3s-fs bash benches/s3/run.sh [ROUNDS] [THREADS] # s3s-fs (Rust; cargo-installed into bench-out/tools)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
THREADS=${2:-2}
SERVER=${SERVER:-moto}
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
case $SERVER in
moto)
    $PY scripts/s3_server.py --port 9000 --bucket bench "$SET" < <(sleep infinity) > /tmp/s3bench.ready &
    S3=$!
    until grep -q ready /tmp/s3bench.ready 2>/dev/null; do sleep 0.5; done
    ;;
s3s-fs)
    [[ -x bench-out/tools/bin/s3s-fs ]] ||
        cargo install -q s3s-fs --version 0.14.1 --features binary --root bench-out/tools
    rm -rf bench-out/s3root && mkdir -p bench-out/s3root/bench/bench-out
    cp -al "$SET" bench-out/s3root/bench/bench-out/  # hard links: no copy
    bench-out/tools/bin/s3s-fs --host 127.0.0.1 --port 9000 --access-key test --secret-key test bench-out/s3root &
    S3=$!
    sleep 1
    ;;
*) echo "SERVER must be moto or s3s-fs" >&2; exit 2 ;;
esac
$PY benches/s3/latency_proxy.py --listen 9100 --target 9000 --delay-ms 20 > /dev/null &
PROXY=$!
trap 'kill $S3 $PROXY 2>/dev/null' EXIT
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
# CPU seconds (user + system) the server and the proxy have used so far.
server_cpu() { awk '{t += $14 + $15} END {printf "%.2f", t / 100}' "/proc/$S3/stat" "/proc/$PROXY/stat"; }
# One bench run: "items/s (N decoded; client CPU s, server+proxy CPU s)".
bench() {
    local before after
    before=$(server_cpu)
    /usr/bin/time -f '%U %S' -o /tmp/s3bench.time ./target/release/spdl bench "$@" --kind image --threads "$THREADS" --json > /tmp/s3bench.json
    after=$(server_cpu)
    python3 - "$before" "$after" <<'EOF'
import json, sys
r = json.load(open("/tmp/s3bench.json"))
user, system = map(float, open("/tmp/s3bench.time").read().split()[-2:])
server = float(sys.argv[2]) - float(sys.argv[1])
print("%.1f (%d decoded; CPU s: client %.2f, server+proxy %.2f)" % (r["items_per_second"], r["decoded"], user + system, server))
EOF
}
echo "server $SERVER, $THREADS decode threads"
for round in $(seq "$ROUNDS"); do
    local_rate=$(bench "$SET")
    s3_rate=$(AWS_ENDPOINT_URL=http://127.0.0.1:9000 bench s3://bench/bench-out/imagenet1k/)
    slow_rate=$(AWS_ENDPOINT_URL=http://127.0.0.1:9100 bench s3://bench/bench-out/imagenet1k/)
    echo "round $round: local $local_rate"
    echo "         s3 $s3_rate"
    echo "    s3+20ms $slow_rate"
done
