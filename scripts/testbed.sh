#!/usr/bin/env bash
# Network-namespace test bed for Sluice (docs/testbed.md):
#
#   client (203.0.113.10-13, 2001:db8:c::10-13)
#     | c0 <-> r-c
#   router (203.0.113.1 | br0 198.51.100.1, 2001:db8:b::1; routes VIPs to the balancer)
#     | br0: the shared L2 segment
#     +-- lb0   lb  (kernel 198.51.100.2; sluice-dataplane 198.51.100.3, NAT pool 198.51.100.9)
#     +-- eth0  be1..beN (198.51.100.11.., VIPs on lo, default route via the router,
#                         HTTP :80, TCP echo :7, UDP echo :7, sluice-decap on eth0)
#
# VIPs 192.0.2.10 and 2001:db8::10. DSR replies go backend -> router -> client.
#
#   scripts/testbed.sh up [--no-dataplane]   build the bed (idempotent: tears down first)
#   scripts/testbed.sh down                  stop everything, delete every namespace
#   scripts/testbed.sh status                namespaces, processes, XDP programs
#
# Environment: SLUICE_TB_PREFIX (namespace prefix, default "sl"), SLUICE_TB_BACKENDS
# (default 3), SLUICE_BUILD_DIR (default: the first of build, build-test, build-*
# with a sluice-dataplane), SLUICE_TB_DRIVER (af_xdp or af_packet; default: try
# af_xdp, fall back to af_packet), SLUICE_TB_DP_ARGS (extra sluice-dataplane
# options, e.g. "--rx-desc 64"). Services are published into
# /dev/shm/sluice-$PREFIX-tb with publish_tables (or, later, the control plane).
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$(pwd)
prefix=${SLUICE_TB_PREFIX:-sl}
n_backends=${SLUICE_TB_BACKENDS:-3}
state=/run/sluice-testbed-$prefix
shm_path=/dev/shm/sluice-$prefix-tb

ns_client=$prefix-client
ns_router=$prefix-router
ns_lb=$prefix-lb
backend_ns() { echo "$prefix-be$1"; }

# Addresses (documentation ranges only).
vip4=192.0.2.10
vip6=2001:db8::10
router_mac=02:53:00:00:00:01
lb_mac=02:53:00:00:00:03
lb_own4=198.51.100.3
lb_own6=2001:db8:b::3
nat_pool4=198.51.100.9
nat_pool6=2001:db8:b::9
backend_mac() { printf '02:53:00:00:01:%02x' "$1"; }
backend4() { echo "198.51.100.$((10 + $1))"; }
backend6() { echo "2001:db8:b::$((10 + $1))"; }

log() { echo "testbed: $*"; }
die() {
  echo "testbed: error: $*" >&2
  exit 1
}

find_build_dir() {
  if [[ -n ${SLUICE_BUILD_DIR:-} ]]; then
    echo "$SLUICE_BUILD_DIR"
    return
  fi
  local d
  for d in build build-test build-*; do
    [[ -x $d/dataplane/sluice-dataplane ]] && {
      echo "$d"
      return
    }
  done
  echo build
}

in_ns() {
  local ns=$1
  shift
  ip netns exec "$ns" "$@"
}

offloads_off() { # ns iface
  in_ns "$1" ethtool -K "$2" tx off tso off gso off gro off >/dev/null 2>&1 || true
}

new_ns() {
  ip netns add "$1"
  in_ns "$1" ip link set lo up
  in_ns "$1" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
    net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
}

# veth pair: ns_a/if_a <-> ns_b/if_b, offloads off on both ends.
# The pair is born in the current namespace under temporary names unique to this
# run, so concurrent test beds (other prefixes) never collide.
veth_seq=0
veth() {
  veth_seq=$((veth_seq + 1))
  local ta=tb$$x${veth_seq}a tb=tb$$x${veth_seq}b
  ip link add "$ta" type veth peer name "$tb"
  ip link set "$ta" netns "$1"
  ip link set "$tb" netns "$3"
  in_ns "$1" ip link set "$ta" name "$2"
  in_ns "$3" ip link set "$tb" name "$4"
  offloads_off "$1" "$2"
  offloads_off "$3" "$4"
}

start_daemon() { # name ns command...: background process, pid file and log in $state
  local name=$1 ns=$2
  shift 2
  setsid ip netns exec "$ns" "$@" >"$state/$name.log" 2>&1 </dev/null &
  echo $! >"$state/$name.pid"
}

stop_daemon() { # name [timeout_s]
  local pidf=$state/$1.pid pid i
  [[ -f $pidf ]] || return 0
  pid=$(cat "$pidf")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < ${2:-5} * 10; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidf"
}

cmd_down() {
  if [[ -d $state ]]; then
    stop_daemon dataplane 10
    [[ -f $state/dataplane.log ]] && grep -h '^stats:' "$state/dataplane.log" | tail -n 1 || true
    local f
    for f in "$state"/*.pid; do
      [[ -e $f ]] && stop_daemon "$(basename "$f" .pid)"
    done
  fi
  local ns
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^$prefix-(client|router|lb|be[0-9]+)$" || true); do
    # Servers started inside the namespace die with it only when killed.
    local pids
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [[ -n $pids ]] && kill -KILL $pids 2>/dev/null || true
    ip netns del "$ns"
  done
  rm -f "$shm_path"
  rm -rf "$state"
}

start_dataplane() {
  local build=$1 driver=${SLUICE_TB_DRIVER:-}
  local dp=$build/dataplane/sluice-dataplane steer_obj
  steer_obj=$(cd "$build" && pwd)/bpf/vip_steer.bpf.o
  [[ -x $dp ]] || die "$dp is not built (ninja -C $build)"
  ulimit -l unlimited 2>/dev/null || log "note: cannot raise the locked-memory limit (ulimit -l: $(ulimit -l))"
  local neigh=(--neigh "198.51.100.1=$router_mac" --neigh "2001:db8:b::1=$router_mac")
  local i
  for ((i = 1; i <= n_backends; i++)); do
    neigh+=(--neigh "$(backend4 "$i")=$(backend_mac "$i")" --neigh "$(backend6 "$i")=$(backend_mac "$i")")
  done
  local opts=(--port 0 --shm-path "$shm_path" --instance "$prefix-tb"
    --addr "$lb_own4/24" --addr "$lb_own6/64" --nat-pool "$nat_pool4" --nat-pool "$nat_pool6"
    --gateway 198.51.100.1 --gateway 2001:db8:b::1 "${neigh[@]}" --flow-table-size 65536)
  local extra
  read -r -a extra <<<"${SLUICE_TB_DP_ARGS:-}"
  opts+=("${extra[@]}")
  local eal=(-l 0,1 --no-pci --file-prefix "$prefix-tb" --no-huge -m 512 --no-shconf
    --log-level '*:warning')
  local tries=(af_xdp af_packet) vdev
  [[ -n $driver ]] && tries=("$driver")
  for driver in "${tries[@]}"; do
    if [[ $driver == af_xdp ]]; then
      vdev="net_af_xdp0,iface=lb0,start_queue=0,queue_count=1"
      [[ -f $steer_obj ]] && vdev+=",xdp_prog=$steer_obj"
    else
      vdev="net_af_packet0,iface=lb0,qpairs=1"
    fi
    start_daemon dataplane "$ns_lb" "$dp" "${eal[@]}" --vdev "$vdev" -- "${opts[@]}"
    local t
    for ((t = 0; t < 100; t++)); do
      grep -q '^port 0:' "$state/dataplane.log" 2>/dev/null && break
      kill -0 "$(cat "$state/dataplane.pid")" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$(cat "$state/dataplane.pid")" 2>/dev/null && grep -q '^port 0:' "$state/dataplane.log"; then
      echo "$driver" >"$state/driver"
      log "sluice-dataplane running on lb0 with net_$driver ($(grep -m1 '^port 0:' "$state/dataplane.log"))"
      return 0
    fi
    log "net_$driver did not start; its log:"
    sed 's/^/  /' "$state/dataplane.log" | tail -n 15
    stop_daemon dataplane
  done
  die "sluice-dataplane could not attach to lb0"
}

cmd_up() {
  local with_dataplane=1
  [[ ${1:-} == --no-dataplane ]] && with_dataplane=0
  [[ $(id -u) -eq 0 ]] || die "must run as root"
  cmd_down >/dev/null 2>&1 || true
  mkdir -p "$state"
  local build
  build=$(find_build_dir)
  echo "$build" >"$state/build_dir"

  new_ns "$ns_client"
  new_ns "$ns_router"
  new_ns "$ns_lb"

  # client <-> router
  veth "$ns_client" c0 "$ns_router" r-c
  local i
  for i in 10 11 12 13; do
    in_ns "$ns_client" ip addr add "203.0.113.$i/24" dev c0
    in_ns "$ns_client" ip addr add "2001:db8:c::$i/64" dev c0 nodad
  done
  in_ns "$ns_client" ip link set c0 up
  in_ns "$ns_client" ip route add default via 203.0.113.1
  in_ns "$ns_client" ip -6 route add default via 2001:db8:c::1
  in_ns "$ns_router" ip addr add 203.0.113.1/24 dev r-c
  in_ns "$ns_router" ip addr add 2001:db8:c::1/64 dev r-c nodad
  in_ns "$ns_router" ip link set r-c up

  # router: bridge = the servers' L2 segment; routes the VIPs to the dataplane
  in_ns "$ns_router" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
  in_ns "$ns_router" ip link add br0 address "$router_mac" type bridge
  in_ns "$ns_router" ip link set br0 type bridge stp_state 0 forward_delay 0
  in_ns "$ns_router" ip addr add 198.51.100.1/24 dev br0
  in_ns "$ns_router" ip addr add 2001:db8:b::1/64 dev br0 nodad
  in_ns "$ns_router" ip link set br0 up
  offloads_off "$ns_router" br0

  veth "$ns_lb" lb0 "$ns_router" r-lb
  in_ns "$ns_lb" ip link set lb0 address "$lb_mac"
  in_ns "$ns_lb" ip addr add 198.51.100.2/24 dev lb0
  in_ns "$ns_lb" ip link set lb0 up
  in_ns "$ns_router" ip link set r-lb master br0 up

  for ((i = 1; i <= n_backends; i++)); do
    local ns
    ns=$(backend_ns "$i")
    new_ns "$ns"
    in_ns "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
    veth "$ns" eth0 "$ns_router" "r-be$i"
    in_ns "$ns" ip link set eth0 address "$(backend_mac "$i")"
    in_ns "$ns" ip addr add "$(backend4 "$i")/24" dev eth0
    in_ns "$ns" ip addr add "$(backend6 "$i")/64" dev eth0 nodad
    in_ns "$ns" ip link set eth0 up
    in_ns "$ns" ip addr add "$vip4/32" dev lo
    in_ns "$ns" ip addr add "$vip6/128" dev lo
    in_ns "$ns" ip route add default via 198.51.100.1
    in_ns "$ns" ip -6 route add default via 2001:db8:b::1
    in_ns "$ns_router" ip link set "r-be$i" master br0 up
    start_daemon "server-be$i" "$ns" /usr/bin/python3 "$repo/scripts/testbed_server.py" "be$i"
    if [[ -x $build/bpf/sluice-decap ]]; then
      in_ns "$ns" "$build/bpf/sluice-decap" attach --iface eth0 \
        --addr "$(backend4 "$i")" --addr "$(backend6 "$i")" >/dev/null
    else
      log "warning: $build/bpf/sluice-decap not built; dsr-ipip/dsr-gue backends cannot decapsulate"
    fi
  done

  in_ns "$ns_router" ip route add 192.0.2.0/24 via "$lb_own4"
  in_ns "$ns_router" ip -6 route add 2001:db8::/64 via "$lb_own6"
  # The dataplane answers ARP/ND itself; static entries make the first packet fast.
  in_ns "$ns_router" ip neigh replace "$lb_own4" lladdr "$lb_mac" dev br0 nud permanent
  in_ns "$ns_router" ip neigh replace "$lb_own6" lladdr "$lb_mac" dev br0 nud permanent

  if ((with_dataplane)); then
    start_dataplane "$build"
  fi
  log "up: $n_backends backends, build $build, shared memory $shm_path"
}

cmd_status() {
  local ns any=0
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^$prefix-(client|router|lb|be[0-9]+)$" | sort || true); do
    any=1
    local xdp
    xdp=$(in_ns "$ns" ip -o link show 2>/dev/null | grep -o 'prog/xdp id [0-9]*' | tr '\n' ' ' || true)
    echo "$ns: ${xdp:-no XDP}"
  done
  ((any)) || {
    echo "testbed: down"
    return 3
  }
  local f
  for f in "$state"/*.pid; do
    [[ -e $f ]] || continue
    local name pid
    name=$(basename "$f" .pid)
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then echo "$name: running (pid $pid)"; else echo "$name: dead"; fi
  done
  [[ -f $state/driver ]] && echo "dataplane driver: net_$(cat "$state/driver")"
  return 0
}

case ${1:-} in
up)
  shift
  cmd_up "$@"
  ;;
down) cmd_down ;;
status) cmd_status ;;
*)
  echo "usage: $0 up [--no-dataplane] | down | status" >&2
  exit 2
  ;;
esac
