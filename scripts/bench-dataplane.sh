#!/usr/bin/env bash
# Per-packet cost of the worker pipeline: builds and runs sluice-bench (the real
# dp::pipeline on one core over pre-built packets) for every case at 1, 1024 and
# 1048576 flows, and prints one JSON line per case on stdout. Reserves hugepages
# first through scripts/setup.sh when run as root (sluice-bench falls back to
# --no-huge -m 4096 without them, which makes the 1M-flow cases slower: TLB).
# See docs/performance.md for the recorded results and how to read them.
#
#   scripts/bench-dataplane.sh [BUILD_DIR] [sluice-bench options...]
#   e.g. scripts/bench-dataplane.sh build --runs 9
#        scripts/bench-dataplane.sh build --case new-flow --flows 1048576
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true

if [[ $(id -u) -eq 0 && -x scripts/setup.sh ]]; then
  scripts/setup.sh >&2 || echo "bench-dataplane.sh: setup.sh failed; continuing" >&2
fi

if [[ ! -f $build/build.ninja ]]; then
  meson setup "$build" --buildtype=release >&2
fi
ninja -C "$build" dataplane/bench/sluice-bench >&2

bench=$build/dataplane/bench/sluice-bench
echo "bench-dataplane.sh: $(date -u), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)" >&2
exec "$bench" \
  --case floor,dsr-ipip-established,dsr-gue-established,nat-established-forward,nat-established-reply,new-flow \
  --flows 1,1024,1048576 --runs 7 "$@"
