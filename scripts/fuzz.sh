#!/usr/bin/env bash
# The mutation fuzzer (examples/fuzz_mutants.rs) under a 2 GB address-space
# cap, so that an allocation sized by a forged header aborts instead of
# passing on a machine with memory to spare. Extra arguments go to the
# fuzzer (--seed S --count N --timeout-s T, extra corpus folders).
#
#   bash scripts/fuzz.sh --seed 1 --count 20000    # the long run
#   PROFILE=debug bash scripts/fuzz.sh --count 1500  # CI's short run (scripts/test.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${PROFILE:-release}
flags=()
[[ $profile == release ]] && flags=(--release)
cargo build -q "${flags[@]}" --example fuzz_mutants
exe="target/$profile/examples/fuzz_mutants"
set +e
prlimit --as=2000000000 "$exe" "$@"
rc=$?
set -e
if ((rc != 0)); then
    echo "fuzz: failed (exit $rc) on: $(cat target/fuzz-current.txt 2>/dev/null)" >&2
    echo "replay: $exe --only INDEX --save fuzz-out  (then keep the file as a regression fixture)" >&2
fi
exit $rc
