#!/usr/bin/env bash
# End-to-end comparison on the namespace test bed (docs/testbed.md), all in one
# run, systems alternated round by round so that drift (other load on the
# machine) hits each of them alike:
#
#   direct-be1  client -> be1 directly (no balancer; one backend: the ceiling
#               of one server, not of three)
#   sluice-nat  sluice-dataplane, full NAT (VIP 192.0.2.20)
#   sluice-dsr  sluice-dataplane, dsr-ipip, replies bypass it (VIP 192.0.2.10)
#   nft-dnat    kernel forwarding in the lb namespace, kube-proxy style
#               `numgen random mod 3` DNAT map + masquerade (VIP 192.0.2.40)
#   haproxy     HAProxy `mode tcp`, roundrobin, in the lb namespace (VIP 192.0.2.50)
#
# Per system and round: new connections/s (wrk, `Connection: close`),
# keep-alive requests/s with p50/p99 latency (wrk --latency), bulk throughput
# (one 64 MiB HTTP download with curl), all against nginx on :8080 in every
# backend. Prints medians over the rounds and ratios to `direct-be1`, as a
# Markdown table.
#
#   scripts/bench-e2e.sh            (root; ROUNDS=3 DURATION=3 WRK_CONNS=8)
#
# The backends serve with nginx (one worker each; installed on demand), so
# the figures measure the balancers rather than the servers (python's
# http.server capped every system near 1,500 conn/s). Offloads are off on every
# interface of every namespace, for every system alike. For packet rates and
# connection rates beyond what a kernel stack can drive, see
# scripts/bench-load.sh (sluice-pktgen). Not part of scripts/test.sh.
set -euo pipefail

cd "$(dirname "$0")/.."
rounds=${ROUNDS:-3}
duration=${DURATION:-3}
conns=${WRK_CONNS:-8}
export SLUICE_TB_PREFIX=${SLUICE_TB_PREFIX:-bx}
prefix=$SLUICE_TB_PREFIX
ns_client=$prefix-client ns_lb=$prefix-lb ns_router=$prefix-router
run_dir=/run/sluice-bench-e2e-$prefix
shm=/dev/shm/sluice-$prefix-tb
bulk_dir=$run_dir/bulk
backends=(198.51.100.11 198.51.100.12 198.51.100.13)

die() {
  echo "bench-e2e: error: $*" >&2
  exit 1
}
[[ $(id -u) -eq 0 ]] || die "must run as root"
for tool in wrk haproxy nft curl nginx; do
  command -v "$tool" >/dev/null || {
    echo "bench-e2e: installing wrk haproxy nftables curl nginx-light"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk haproxy nftables curl nginx-light >/dev/null
    # Debian starts the packaged site on :80 in the root namespace: not ours.
    systemctl disable --now nginx >/dev/null 2>&1 || true
    break
  }
done
build=${SLUICE_BUILD_DIR:-}
if [[ -z $build ]]; then
  for d in build build-demo build-test build-*; do
    [[ -x $d/controlplane/sluice-controlplane && -x $d/dataplane/sluice-dataplane ]] && {
      build=$d
      break
    }
  done
fi
[[ -n $build ]] || die "no build with sluice-controlplane and sluice-dataplane (run scripts/demo.sh or ninja -C build)"
export SLUICE_BUILD_DIR=$build

cleanup() {
  [[ -f $run_dir/haproxy.pid ]] && kill "$(cat "$run_dir/haproxy.pid")" 2>/dev/null || true
  for pidf in "$run_dir"/nginx-be*/nginx.pid; do
    [[ -f $pidf ]] && kill "$(cat "$pidf")" 2>/dev/null || true
  done
  [[ -n ${cp_pid:-} ]] && kill "$cp_pid" 2>/dev/null || true
  scripts/testbed.sh down >/dev/null 2>&1 || true
  rm -rf "$run_dir" "$shm.lock"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_ns() {
  local ns=$1
  shift
  ip netns exec "$ns" "$@"
}

echo "bench-e2e: test bed up (build $build)"
scripts/testbed.sh up | sed 's/^/  /'
mkdir -p "$bulk_dir"
head -c $((64 << 20)) /dev/urandom >"$bulk_dir/64M"

# nginx on :8080 in every backend: "/" answers a short text, /64M the bulk file.
for i in 1 2 3; do
  d=$run_dir/nginx-be$i
  mkdir -p "$d/logs"
  cat >"$d/nginx.conf" <<EOF
worker_processes 1;
pid $d/nginx.pid;
error_log $d/logs/error.log;
events { worker_connections 8192; }
http {
  access_log off;
  sendfile on;
  tcp_nodelay on;
  keepalive_requests 1000000;
  client_body_temp_path $d/body;
  proxy_temp_path $d/proxy;
  fastcgi_temp_path $d/fastcgi;
  uwsgi_temp_path $d/uwsgi;
  scgi_temp_path $d/scgi;
  server {
    listen 8080 backlog=4096;
    listen [::]:8080 backlog=4096;
    root $bulk_dir;
    location = / { default_type text/plain; return 200 "backend=be$i\n"; }
  }
}
EOF
  ip netns exec "$prefix-be$i" nginx -p "$d" -c "$d/nginx.conf" || die "nginx in $prefix-be$i did not start"
done

# Offloads off on every interface of every namespace of the test bed (the
# test bed does it for its veths; this also covers anything added since), so
# every system sees the same segment sizes.
for ns in $(ip netns list | awk '{print $1}' | grep "^$prefix-"); do
  for dev in $(ip netns exec "$ns" ls /sys/class/net); do
    [[ $dev == lo ]] && continue
    ip netns exec "$ns" ethtool -K "$dev" tx off tso off gso off gro off >/dev/null 2>&1 || true
  done
done

# --- Sluice: control plane with nat and dsr-ipip services on :80 and :8080.
svc() { # name vip port mode
  printf '  - {name: %s, vip: %s, port: %s, mode: %s, backends: [%s]}\n' "$1" "$2" "$3" "$4" \
    "$(printf '{address: %s}, ' "${backends[@]}" | sed 's/, $//')"
}
{
  echo "instance: $prefix"
  echo "services:"
  svc nat 192.0.2.20 80 nat
  svc nat-bulk 192.0.2.20 8080 nat
  svc dsr 192.0.2.10 80 dsr-ipip
  svc dsr-bulk 192.0.2.10 8080 dsr-ipip
} >"$run_dir/cp.yaml"
steer=()
[[ $(cat "/run/sluice-testbed-$prefix/driver") == af_xdp ]] &&
  steer=(--steer-iface lb0 --steer-nat-pool 198.51.100.9 --steer-own 198.51.100.3)
setsid ip netns exec "$ns_lb" "$build/controlplane/sluice-controlplane" --config "$run_dir/cp.yaml" \
  --shm-path "$shm" --socket "$run_dir/cp.sock" --state-file "$run_dir/state.yaml" \
  --metrics off "${steer[@]}" >"$run_dir/cp.log" 2>&1 </dev/null &
cp_pid=$!
for _ in $(seq 50); do
  "$build/controlplane/sluicectl" --socket "$run_dir/cp.sock" status >/dev/null 2>&1 && break
  sleep 0.1
done

# --- Kernel and HAProxy VIPs: routed by the router to the lb namespace's kernel
# address (198.51.100.2); vip_steer passes them to the kernel.
in_ns "$ns_router" ip route replace 192.0.2.40/32 via 198.51.100.2
in_ns "$ns_router" ip route replace 192.0.2.50/32 via 198.51.100.2
in_ns "$ns_lb" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 \
  net.ipv4.conf.lb0.send_redirects=0
in_ns "$ns_lb" ip addr add 192.0.2.50/32 dev lo
# The lb kernel answers clients (HAProxy) and un-NATs replies to them (nft).
in_ns "$ns_lb" ip route replace default via 198.51.100.1

# nftables: kube-proxy's shape (random pick among the endpoints), full NAT so
# replies come back through the lb namespace.
in_ns "$ns_lb" nft -f - <<EOF
table ip bench {
  chain pre {
    type nat hook prerouting priority dstnat;
    ip daddr 192.0.2.40 tcp dport { 80, 8080 } dnat to numgen random mod 3 map { 0 : ${backends[0]}, 1 : ${backends[1]}, 2 : ${backends[2]} }
  }
  chain post {
    type nat hook postrouting priority srcnat;
    ct status dnat ip daddr 198.51.100.0/24 masquerade
  }
}
EOF

cat >"$run_dir/haproxy.cfg" <<EOF
global
  maxconn 4000
  pidfile $run_dir/haproxy.pid
defaults
  mode tcp
  timeout connect 3s
  timeout client 30s
  timeout server 30s
frontend web
  bind 192.0.2.50:80
  default_backend web
backend web
  balance roundrobin
$(for i in 0 1 2; do echo "  server be$((i + 1)) ${backends[i]}:80"; done)
frontend bulk
  bind 192.0.2.50:8080
  default_backend bulk
backend bulk
  balance roundrobin
$(for i in 0 1 2; do echo "  server be$((i + 1)) ${backends[i]}:8080"; done)
EOF
in_ns "$ns_lb" haproxy -D -f "$run_dir/haproxy.cfg"

declare -A vip=([direct-be1]=198.51.100.11 [sluice-nat]=192.0.2.20 [sluice-dsr]=192.0.2.10
  [nft-dnat]=192.0.2.40 [haproxy]=192.0.2.50)
systems=(direct-be1 sluice-nat sluice-dsr nft-dnat haproxy)

# Every system answers before measuring anything.
for s in "${systems[@]}"; do
  in_ns "$ns_client" curl -sf -m 3 "http://${vip[$s]}:8080/" >/dev/null || die "$s (${vip[$s]}:8080) does not answer"
done

# wrk's output -> "req_per_s p50_ms p99_ms"
wrk_parse() {
  awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
    $1 == "Requests/sec:" { rps = $2 }
    END { printf "%s %.3f %.3f\n", rps, p50, p99 }'
}

results=$run_dir/results.txt
: >"$results"
for ((r = 1; r <= rounds; r++)); do
  for s in "${systems[@]}"; do
    url="http://${vip[$s]}:8080/"
    read -r cps cp50 cp99 < <(in_ns "$ns_client" wrk -t1 -c"$conns" -d"${duration}s" --latency \
      -H 'Connection: close' "$url" 2>&1 | wrk_parse)
    read -r rps p50 p99 < <(in_ns "$ns_client" wrk -t1 -c"$conns" -d"${duration}s" --latency \
      "$url" 2>&1 | wrk_parse)
    bulk=$(in_ns "$ns_client" curl -s -m 30 -o /dev/null -w '%{speed_download}' \
      "http://${vip[$s]}:8080/64M" || echo 0)
    echo "$r $s $cps $cp99 $rps $p50 $p99 $bulk" >>"$results"
    printf 'round %d %-10s conn/s %8.0f  req/s %8.0f  p50 %6.2f ms  p99 %6.2f ms  bulk %7.1f MB/s\n' \
      "$r" "$s" "$cps" "$rps" "$p50" "$p99" "$(echo "$bulk / 1000000" | bc -l)"
  done
done

echo
echo "Medians over $rounds rounds (wrk -t1 -c$conns, ${duration} s per measurement; ratio = / direct-be1):"
echo
/usr/bin/python3 - "$results" "${systems[@]}" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
systems = sys.argv[2:]
med = {}
for s in systems:
    cols = list(zip(*[[float(x) for x in r[2:]] for r in rows if r[1] == s]))
    med[s] = [statistics.median(c) for c in cols]
print("| system | new conn/s | conn p99 ms | keep-alive req/s | p50 ms | p99 ms | bulk MB/s |")
print("|---|---|---|---|---|---|---|")
base = med[systems[0]]
for s in systems:
    m = med[s]
    ratio = lambda i: f" ({m[i] / base[i]:.2f})" if base[i] else ""
    print(f"| {s} | {m[0]:.0f}{ratio(0)} | {m[1]:.2f} | {m[2]:.0f}{ratio(2)} | {m[3]:.2f} | "
          f"{m[4]:.2f} | {m[5] / 1e6:.0f}{ratio(5)} |")
EOF
