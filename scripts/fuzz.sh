#!/bin/bash
# Runs one libFuzzer target (tests/fuzz): first every checked-in seed
# (tests/fuzz/corpus/NAME) and regression input (tests/fuzz/regressions/NAME),
# then fuzzes for SECONDS (default 300) under ASan and UBSan. New interesting
# inputs go to a temporary directory (the checked-in corpus is not touched);
# a crash is copied into tests/fuzz/regressions/NAME/ so it stays a
# regression input once fixed. Prints executions and coverage at the end.
#
# usage: scripts/fuzz.sh TARGET [SECONDS]
#   TARGET  fuzz_api | fuzz_config | fuzz_state_file | fuzz_packet_parse | fuzz_pipeline, or
#           the path of a built target (build dir: $SLUICE_BUILD_DIR or build)
# Exit 0 no crash, 1 crash (reproducer saved), 77 target not built.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=${1:?usage: scripts/fuzz.sh TARGET [SECONDS]}
seconds=${2:-300}
if [[ -x $target && $target == */* ]]; then
  bin=$target
  name=$(basename "$target")
else
  name=$target
  bin=${SLUICE_BUILD_DIR:-$root/build}/tests/fuzz/$name
fi
if [[ ! -x $bin ]]; then
  echo "fuzz.sh: $bin is not built (needs clang++ with libFuzzer; meson configure -Dfuzz=enabled)"
  exit 77
fi
seeds=$root/tests/fuzz/corpus/$name
regress=$root/tests/fuzz/regressions/$name
work=$(mktemp -d "/tmp/sluice-fuzz-$name.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/new" "$work/crash"
dirs=("$work/new")
[[ -d $seeds ]] && dirs+=("$seeds")
[[ -d $regress ]] && dirs+=("$regress")
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
set +e
# FUZZ_RUNS=N (the meson tests): a fixed number of mutations from a fixed seed,
# so a test run is reproducible; SECONDS still bounds it.
runs=()
[[ -n ${FUZZ_RUNS:-} ]] && runs=(-runs="$FUZZ_RUNS" -seed="${FUZZ_SEED:-1}")
"$bin" "${dirs[@]}" "${runs[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -max_len=65536 -print_final_stats=1 -artifact_prefix="$work/crash/" >"$work/log" 2>&1
rc=$?
set -e
tail -n 40 "$work/log" | grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss)" || true
cov=$(grep -oE "cov: [0-9]+ ft: [0-9]+" "$work/log" | tail -n 1 || true)
execs=$(grep -oE "stat::number_of_executed_units: [0-9]+" "$work/log" | grep -oE "[0-9]+$" || true)
inputs=$(find "${dirs[@]:1}" -type f 2>/dev/null | wc -l || true)
echo "fuzz.sh: $name: ${execs:-?} executions in ${seconds} s, ${cov:-coverage ?}, $inputs seed/regression inputs"
if [[ $rc -ne 0 ]]; then
  tail -n 60 "$work/log"
  mkdir -p "$regress"
  for f in "$work"/crash/*; do
    [[ -e $f ]] || continue
    cp "$f" "$regress/"
    echo "fuzz.sh: reproducer kept as $regress/$(basename "$f"); fix the bug and commit it"
  done
  exit 1
fi
