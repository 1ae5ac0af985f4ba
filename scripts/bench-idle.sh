#!/usr/bin/env bash
# Wake-up latency of the worker loop's idle back-off against --busy-poll.
# Runs tests/integration/idle_latency_bench (the real worker loop and pipeline on
# a net_ring port) once per mode and prints median/p90/p99/max per mode. Each
# sample: wait until the worker sleeps, enqueue an ARP request on the RX ring,
# time until the reply is on the TX ring. Needs 2 cores; numbers are only
# meaningful on an otherwise idle machine.
#
#   scripts/bench-idle.sh [BUILD_DIR] [SAMPLES]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
samples=${2:-500}
bench=$build/tests/integration/idle_latency_bench
if [[ ! -x $bench ]]; then
  meson setup "$build" --buildtype=release >/dev/null 2>&1 || true
  ninja -C "$build" tests/integration/idle_latency_bench >/dev/null
fi

mem=(--in-memory)
free=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages 2>/dev/null || echo 0)
if [[ $(id -u) -ne 0 || $free -lt 128 ]]; then
  mem=(--no-huge -m 256 --no-shconf)
fi
eal=(-l 0,1 --no-pci "${mem[@]}" --log-level '*:error' --file-prefix "idle-bench-$$")

run() { "$bench" "${eal[@]}" -- --samples "$samples" "$@" 2>&1 | grep -v '^TELEMETRY'; }
run
run --idle-sleep-us 10
run --busy-poll
