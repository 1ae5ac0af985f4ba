#!/usr/bin/env bash
# Idle cost and loaded throughput of the worker loop's idle back-off on the
# namespace test bed (docs/testbed.md; net_af_xdp + vip_steer, one worker):
#
#   fixed-50us   the old fixed 50 us sleep (--idle-sleep-max-us 50)
#   adaptive     the default: 50 us doubling to 1000 us
#   busy-poll    --busy-poll
#
# Per mode and round: the bed comes up with that mode (SLUICE_TB_DP_ARGS), the
# control plane publishes one `nat` HTTP service (VIP 192.0.2.20, three
# backends), then
#   idle CPU: (utime + stime) of the dataplane process over IDLE_S seconds
#             without traffic, from /proc/PID/stat, in % of one core;
#   conn/s:   wrk -t1 -cWRK_CONNS -H 'Connection: close' for DURATION s.
# Modes alternate round by round so that other load hits each alike; prints
# the medians and the ratio to busy-poll as a Markdown table.
#
#   scripts/bench-backoff.sh [BUILD_DIR]   (root; ROUNDS=3 IDLE_S=10 DURATION=3 WRK_CONNS=8)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
rounds=${ROUNDS:-3}
idle_s=${IDLE_S:-10}
duration=${DURATION:-3}
conns=${WRK_CONNS:-8}
export SLUICE_TB_PREFIX=${SLUICE_TB_PREFIX:-bo}
export SLUICE_BUILD_DIR=$build
export SLUICE_TB_DRIVER=af_xdp
prefix=$SLUICE_TB_PREFIX
run_dir=/run/sluice-bench-backoff-$prefix
shm=/dev/shm/sluice-$prefix-tb
sock=$run_dir/cp.sock
[[ $(id -u) -eq 0 ]] || {
  echo "bench-backoff: must run as root" >&2
  exit 1
}
command -v wrk >/dev/null || {
  echo "bench-backoff: wrk is not installed (apt-get install wrk)" >&2
  exit 1
}

declare -A mode_args=(
  [fixed-50us]="--idle-sleep-max-us 50"
  [adaptive]=""
  [busy-poll]="--busy-poll"
)
modes=(fixed-50us adaptive busy-poll)
declare -A idle_cpu conn_rate

cleanup() {
  [[ -f $run_dir/cp.pid ]] && kill "$(cat "$run_dir/cp.pid")" 2>/dev/null || true
  scripts/testbed.sh down >/dev/null 2>&1 || true
  rm -rf "$run_dir"
}
trap cleanup EXIT
mkdir -p "$run_dir"
cat >"$run_dir/cp.yaml" <<EOF
instance: $prefix
services:
  - name: web
    vip: 192.0.2.20
    port: 80
    mode: nat
    backends: [{address: 198.51.100.11}, {address: 198.51.100.12}, {address: 198.51.100.13}]
EOF

cpu_ticks() { # pid: utime + stime in clock ticks
  awk '{print $14 + $15}' "/proc/$1/stat"
}

one() { # mode round
  local mode=$1
  SLUICE_TB_DP_ARGS=${mode_args[$mode]} scripts/testbed.sh up >"$run_dir/up.log" 2>&1 || {
    cat "$run_dir/up.log" >&2
    exit 1
  }
  ip netns exec "$prefix-lb" "$build/controlplane/sluice-controlplane" --config "$run_dir/cp.yaml" \
    --shm-path "$shm" --socket "$sock" --state-file "$run_dir/state.yaml" --metrics off \
    --steer-iface lb0 --steer-nat-pool 198.51.100.9 --steer-own 198.51.100.3 \
    >"$run_dir/cp.log" 2>&1 &
  echo $! >"$run_dir/cp.pid"
  local i
  for ((i = 0; i < 100; i++)); do
    "$build/controlplane/sluicectl" --socket "$sock" status >/dev/null 2>&1 && break
    sleep 0.1
  done
  # One request so every path (ARP, steering) is warm, then idle.
  ip netns exec "$prefix-client" curl -s -m 2 http://192.0.2.20/ >/dev/null || true
  sleep 1
  local pid t0 t1 hz
  pid=$(cat "/run/sluice-testbed-$prefix/dataplane.pid")
  hz=$(getconf CLK_TCK)
  t0=$(cpu_ticks "$pid")
  sleep "$idle_s"
  t1=$(cpu_ticks "$pid")
  local cpu
  cpu=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v s="$idle_s" 'BEGIN{printf "%.1f", 100*d/hz/s}')
  idle_cpu[$mode]+="$cpu "
  local rate
  rate=$(ip netns exec "$prefix-client" wrk -t1 -c"$conns" -d"${duration}s" \
    -H 'Connection: close' http://192.0.2.20/ 2>/dev/null | awk '/Requests\/sec/ {print $2}')
  conn_rate[$mode]+="${rate:-0} "
  kill "$(cat "$run_dir/cp.pid")" 2>/dev/null || true
  wait "$(cat "$run_dir/cp.pid")" 2>/dev/null || true
  rm -f "$run_dir/cp.pid"
  echo "round $2 $mode: idle CPU $cpu %, ${rate:-0} conn/s" >&2
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END{print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

for ((r = 1; r <= rounds; r++)); do
  for m in "${modes[@]}"; do one "$m" "$r"; done
done

busy=$(echo "${conn_rate[busy-poll]}" | median)
echo "| mode | idle CPU (% of a core), median | per round | new conn/s, median | per round | vs busy-poll |"
echo "|---|---:|---|---:|---|---:|"
for m in "${modes[@]}"; do
  ic=$(echo "${idle_cpu[$m]}" | median)
  cr=$(echo "${conn_rate[$m]}" | median)
  echo "| $m | $ic | ${idle_cpu[$m]% } | $cr | ${conn_rate[$m]% } | $(awk -v a="$cr" -v b="$busy" 'BEGIN{printf "%.2f", (b > 0) ? a/b : 0}') |"
done
