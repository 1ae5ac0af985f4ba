#!/usr/bin/env bash
# Health-check engine benchmark (docs/performance.md, "Health checks"): one
# prober thread checks N loopback backends (127.1.x.y, one listener answering
# HTTP from its own thread on the same machine) every interval; three runs per
# kind. Reported: achieved checks/s against N x 1000/interval, failures, the
# prober thread's CPU share and the check latency (p50, p99).
# usage: scripts/bench-health.sh [BUILD_DIR] [BACKENDS] [INTERVAL_MS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
n=${2:-1000}
interval=${3:-100}
secs=${4:-5}
bin=$build/controlplane/sluice-health-bench
[[ -x $bin ]] || { echo "bench-health.sh: $bin not built" >&2; exit 1; }
for kind in tcp http; do
  for run in 1 2 3; do
    "$bin" --backends "$n" --interval-ms "$interval" --seconds "$secs" --kind "$kind"
  done
done
