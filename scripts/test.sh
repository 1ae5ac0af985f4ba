#!/usr/bin/env bash
# The one test command (README, CI): sets the machine up, builds from scratch in
# build-test/ and runs every meson test serially (some use hugepages and EAL).
# The last line of output is always "N passed, N failed" (", N skipped" is
# appended when tests skipped); timeouts count as failures. Exit status is
# non-zero when anything failed, including the build.
set -uo pipefail

cd "$(dirname "$0")/.."
build_dir=build-test

scripts/setup.sh || echo "test.sh: warning: setup.sh failed, continuing" >&2

rm -rf "$build_dir"
if ! meson setup "$build_dir" --buildtype=release || ! ninja -C "$build_dir"; then
  echo "test.sh: build failed" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
meson test -C "$build_dir" --print-errorlogs --num-processes 1 2>&1 | tee "$log"
meson_status=${PIPESTATUS[0]}

# Summary lines look like "Ok:                 12  ".
count() {
  local v
  v=$(sed -n "s/^$1:[[:space:]]*\([0-9][0-9]*\).*/\1/p" "$log" | tail -n 1)
  echo "${v:-0}"
}
ok=$(count 'Ok')
expected_fail=$(count 'Expected Fail')
fail=$(count 'Fail')
unexpected_pass=$(count 'Unexpected Pass')
skipped=$(count 'Skipped')
timeout=$(count 'Timeout')

passed=$((ok + expected_fail))
failed=$((fail + unexpected_pass + timeout))
# meson failed without printing a summary (e.g. it could not start): count it.
if ((meson_status != 0 && failed == 0)); then
  failed=1
fi

if ((skipped > 0)); then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
((failed == 0))
