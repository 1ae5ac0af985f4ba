#!/usr/bin/env bash
# Wake-up latency of the worker loop's idle back-off against --busy-poll:
# the adaptive default after a short idle spell (0.2..2.2 ms) and after a long
# one (--settle-ms 20: the sleep has reached its 1 ms cap), the old fixed
# 50 us sleep (--idle-sleep-max-us 50), and --busy-poll.
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
run --settle-ms 20
run --idle-sleep-max-us 50
run --busy-poll
