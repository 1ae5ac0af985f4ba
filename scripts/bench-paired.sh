#!/bin/bash
# Interleaved runs of several sluice-bench binaries (e.g. a baseline built from
# an older commit and the current build), so that every binary sees the same
# machine load; prints the median ns/packet per case, flow count and binary.
# On a shared machine only ratios within one such run mean anything.
#
#   scripts/bench-paired.sh CASES FLOWS ROUNDS BIN [BIN...]
#   scripts/bench-paired.sh dsr-ipip-established,new-flow 1,1048576 3 \
#       /tmp/base/sluice-bench build/dataplane/bench/sluice-bench
set -euo pipefail
if [ $# -lt 4 ]; then
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
cases=$1 flows=$2 rounds=$3
shift 3
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
for r in $(seq "$rounds"); do
  i=0
  for b in "$@"; do
    "$b" --case "$cases" --flows "$flows" --runs 3 2>/dev/null | grep '^{' | sed "s|^|$i |" >>"$raw" || true
    i=$((i + 1))
  done
done
python3 - "$raw" "$@" <<'PY'
import collections, json, statistics, sys
bins = sys.argv[2:]
d = collections.defaultdict(list)
for line in open(sys.argv[1]):
    i, j = line.split(' ', 1)
    j = json.loads(j)
    d[(j['case'], j['flows'])].append((int(i), j['ns_per_packet']))
print('case flows ' + ' '.join(f'bin{i}' for i in range(len(bins))) + '  (median ns/packet)')
for (c, f), v in sorted(d.items()):
    med = []
    for i in range(len(bins)):
        xs = [x for b, x in v if b == i]
        med.append(f'{statistics.median(xs):.1f}' if xs else '-')
    print(c, f, ' '.join(med))
for i, b in enumerate(bins):
    print(f'bin{i} = {b}')
PY
