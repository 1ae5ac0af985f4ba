#!/usr/bin/env bash
# Sluice in two minutes: real TCP between real programs, through the real
# dataplane, driven by the real control plane and sluicectl.
#
#   scripts/demo.sh [--keep]
#
# 1. installs what is missing (scripts/setup.sh) and builds into build-demo/;
# 2. brings up the namespace test bed (scripts/testbed.sh, docs/testbed.md):
#    a client, a router, the balancer (sluice-dataplane on AF_XDP) and three
#    backends running small HTTP servers;
# 3. starts sluice-controlplane with the config embedded below (a NAT service
#    and a DSR service over the same three backends);
# 4. sends HTTP requests from the client and says what happens: the spread
#    over the backends, a backend taken out with a weight of 0, a drain that
#    keeps an open connection alive, and the counters (sluicectl list --stats).
#
# Without --keep everything is stopped and deleted on exit (also on Ctrl-C);
# with --keep the bed stays up and the script prints how to drive it.
# Needs root (network namespaces, XDP). Only documentation address ranges,
# only inside the namespaces it creates.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$(pwd)
keep=0
case ${1:-} in
--keep) keep=1 ;;
"") ;;
*)
  echo "usage: $0 [--keep]" >&2
  exit 2
  ;;
esac

export SLUICE_TB_PREFIX=${SLUICE_TB_PREFIX:-demo}
export SLUICE_BUILD_DIR=${SLUICE_BUILD_DIR:-build-demo}
prefix=$SLUICE_TB_PREFIX
build=$SLUICE_BUILD_DIR
run_dir=/run/sluice-demo-$prefix # config, socket, state file, control-plane log
sock=$run_dir/sluice.sock
shm=/dev/shm/sluice-$prefix-tb # where testbed.sh's dataplane reads its tables
ns_client=$prefix-client
ns_lb=$prefix-lb
client_py=$repo/tests/integration/testbed_client.py
sources=(203.0.113.10 203.0.113.11 203.0.113.12 203.0.113.13)

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
note() { echo "   $*"; }
die() {
  echo "demo: error: $*" >&2
  exit 1
}

[[ $(id -u) -eq 0 ]] || die "run as root (network namespaces and XDP): sudo $0 $*"

# ---------------------------------------------------------------- cleanup
cp_pid=
ka_pid=
cleanup() {
  local rc=$?
  [[ -n $ka_pid ]] && kill "$ka_pid" 2>/dev/null || true
  if ((keep)) && ((rc == 0)); then
    return
  fi
  echo
  echo "demo: cleaning up (control plane, dataplane, namespaces)"
  if [[ -n $cp_pid ]] && kill -0 "$cp_pid" 2>/dev/null; then
    kill -TERM "$cp_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$cp_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$cp_pid" 2>/dev/null || true
  fi
  scripts/testbed.sh down >/dev/null 2>&1 || true
  rm -rf "$run_dir" "$shm.lock"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- setup, build
say "Preparing the machine and building (first run: a few minutes; later: seconds)"
# setup.sh is idempotent: it installs only missing packages.
scripts/setup.sh >/dev/null
targets=(dataplane/sluice-dataplane controlplane/sluice-controlplane controlplane/sluicectl
  bpf/sluice-decap bpf/sluice-steer bpf/vip_steer.bpf.o)
[[ -f $build/build.ninja ]] || meson setup "$build" --buildtype=release >/dev/null
ninja -C "$build" "${targets[@]}" >/dev/null || die "build failed (ninja -C $build)"
ctl() { "$build/controlplane/sluicectl" --socket "$sock" "$@"; }
note "built in $build/"

# ---------------------------------------------------------------- test bed
say "Bringing up the test bed (namespaces $prefix-client, -router, -lb, -be1..3)"
scripts/testbed.sh up | sed 's/^/   /'
driver=$(cat "/run/sluice-testbed-$prefix/driver")

# ---------------------------------------------------------------- control plane
mkdir -p "$run_dir"
cat >"$run_dir/demo.yaml" <<'EOF'
# The demo's config: one VIP per forwarding style, the same three backends.
instance: demo
services:
  # Full NAT: the balancer rewrites both addresses; backends see its NAT-pool
  # address (198.51.100.9) and answer through it.
  - name: web-nat
    vip: 192.0.2.20
    port: 80
    mode: nat
    backends:
      - {address: 198.51.100.11}
      - {address: 198.51.100.12}
      - {address: 198.51.100.13}
  # Direct server return over IP-in-IP: requests are tunnelled to a backend,
  # which has the VIP on its loopback and answers the client directly.
  - name: web-dsr
    vip: 192.0.2.10
    port: 80
    mode: dsr-ipip
    backends:
      - {address: 198.51.100.11}
      - {address: 198.51.100.12}
      - {address: 198.51.100.13}
EOF
say "Starting sluice-controlplane with this config ($run_dir/demo.yaml):"
grep -v '^ *#' "$run_dir/demo.yaml" | sed 's/^/   | /'
steer=()
# With AF_XDP, vip_steer decides which packets reach the dataplane; the control
# plane keeps its VIP map in step with the services (--steer-iface).
[[ $driver == af_xdp ]] && steer=(--steer-iface lb0 --steer-nat-pool 198.51.100.9
  --steer-nat-pool 2001:db8:b::9 --steer-own 198.51.100.3 --steer-own 2001:db8:b::3)
rm -f "$run_dir/state.yaml" # a fresh demo: the embedded config, not a previous run's changes
setsid ip netns exec "$ns_lb" "$build/controlplane/sluice-controlplane" \
  --config "$run_dir/demo.yaml" --shm-path "$shm" --socket "$sock" \
  --state-file "$run_dir/state.yaml" --metrics 127.0.0.1:9700 "${steer[@]}" \
  >"$run_dir/controlplane.log" 2>&1 </dev/null &
cp_pid=$!
for _ in $(seq 100); do
  ctl status >/dev/null 2>&1 && break
  kill -0 "$cp_pid" 2>/dev/null || { cat "$run_dir/controlplane.log"; die "the control plane exited"; }
  sleep 0.1
done
ctl status >/dev/null || die "the control plane does not answer on $sock"
note "control plane pid $cp_pid, API socket $sock"
note "$(grep -m1 'published as generation' "$run_dir/controlplane.log" | sed 's/^.*sluice-controlplane: //')"
note "Prometheus metrics on 127.0.0.1:9700 inside namespace $ns_lb (GET /metrics)"
echo
ctl list | sed 's/^/   /'

# ---------------------------------------------------------------- traffic
# http VIP COUNT: COUNT requests (Connection: close, four client addresses) from
# the client namespace; prints "be1: N  be2: N  be3: N" and what the backends saw.
http() {
  ip netns exec "$ns_client" /usr/bin/python3 "$client_py" http "$1" 80 "$2" "${sources[@]}" |
    /usr/bin/python3 -c '
import collections, json, sys
r = json.load(sys.stdin)
c = collections.Counter(x[1] for x in r)
errors = sum(n for b, n in c.items() if b.startswith("error"))
peers = sorted({x[2] for x in r if not x[1].startswith("error")})
print("   answers: " + "  ".join(f"{b}: {c[b]:2d}" for b in ("be1", "be2", "be3"))
      + f"   (failed: {errors})")
print("   the backends saw the connections coming from: " + ", ".join(peers))'
}

say "60 requests to the NAT service web-nat (192.0.2.20:80)"
http 192.0.2.20 60
note "Maglev spreads new connections over the three backends; they see the balancer's"
note "NAT-pool address 198.51.100.9, and their replies come back through the balancer."

say "60 requests to the DSR service web-dsr (192.0.2.10:80)"
http 192.0.2.10 60
note "Same spread, but the backends see the real client addresses: requests reach them"
note "in an IP-in-IP tunnel and they answer the client directly, bypassing the balancer."

say "Taking be1 out of web-nat: sluicectl backend set-weight web-nat 198.51.100.11 0"
ctl backend set-weight web-nat 198.51.100.11 0 | sed 's/^/   /'
http 192.0.2.20 60
note "be1 gets no new connections; the others share its part. The change was"
note "acknowledged by the dataplane before sluicectl returned."
ctl backend set-weight web-nat 198.51.100.11 1 >/dev/null

say "Draining a backend while a client holds a keep-alive connection to web-dsr"
coproc KA { ip netns exec "$ns_client" /usr/bin/python3 "$client_py" keepalive 192.0.2.10 80 203.0.113.13; }
ka_pid=$KA_PID
read -r -t 10 first <&"${KA[0]}" || die "the keep-alive client did not answer"
held=$(sed -n 's/^\["\(be[0-9]\)".*/\1/p' <<<"$first")
[[ -n $held ]] || die "keep-alive request failed: $first"
held_addr=198.51.100.1${held#be}
note "an open HTTP/1.1 connection is served by $held ($held_addr)"
echo "   \$ sluicectl backend drain web-dsr $held_addr"
ctl backend drain web-dsr "$held_addr" | sed 's/^/   /'
http 192.0.2.10 60
answers=()
for _ in 1 2 3; do
  echo >&"${KA[1]}"
  read -r -t 10 line <&"${KA[0]}" || line='["error: no answer"]'
  answers+=("$(sed -n 's/^\["\([^"]*\)".*/\1/p' <<<"$line")")
done
note "new connections avoid $held; the open connection is still served by it: ${answers[*]}"
note "(a drained backend keeps its established flows until they end or time out)"
kill "$ka_pid" 2>/dev/null || true
wait "$ka_pid" 2>/dev/null || true
ka_pid=
ctl backend undrain web-dsr "$held_addr" >/dev/null

say "The counters: sluicectl list --stats"
ctl list --stats | sed 's/^/   /'
note "web-nat carries both directions (replies come back through the balancer);"
note "web-dsr only the requests: DSR replies never pass through it."

say "The same counters in Prometheus form (GET /metrics, first lines of the backends):"
ip netns exec "$ns_lb" /usr/bin/python3 -c \
  "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9700/metrics', timeout=5).read().decode())" |
  grep -E '^sluice_backend_(up|connections_total)' | head -6 | sed 's/^/   /'

if ((keep)); then
  say "Left running (--keep). Try:"
  cat <<EOF
   alias sluicectl='$repo/$build/controlplane/sluicectl --socket $sock'
   sluicectl list --stats
   sluicectl conns --limit 20
   sluicectl backend set-weight web-dsr 198.51.100.12 5
   sluicectl backend drain web-nat 198.51.100.13
   sluicectl top --iterations 5
   ip netns exec $ns_client curl -s http://192.0.2.20/      # through web-nat
   ip netns exec $ns_client curl -s http://192.0.2.10/      # through web-dsr
   Logs: $run_dir/controlplane.log, /run/sluice-testbed-$prefix/dataplane.log
   Stop everything:
     kill $cp_pid; SLUICE_TB_PREFIX=$prefix scripts/testbed.sh down; rm -rf $run_dir
EOF
else
  say "Done. Run 'scripts/demo.sh --keep' to leave it running and play with sluicectl."
fi
