#!/usr/bin/env bash
# Several Sluice instances behind an ECMP router, in network namespaces
# (docs/high-availability.md, "Test bed"):
#
#   client (203.0.113.10-13)
#     | c0 <-> r-c
#   router (203.0.113.1 | br0 198.51.100.1): BIRD, AS 65000, BGP + BFD to every
#     |     balancer, ECMP into the kernel FIB with layer-4 hashing
#     |     (fib_multipath_hash_policy=1)
#     | br0: the shared L2 segment
#     +-- lb0  lbN (N = 1..K): kernel 198.51.100.2N (BIRD, AS 65001, peers UDP :7900),
#     |        sluice-dataplane 198.51.100.3N (AF_XDP + vip_steer), NAT pool 198.51.100.4N,
#     |        sluice-controlplane --bgp-include (announces the VIP) --peer (the others)
#     +-- eth0 beM (M = 1..B): 198.51.100.1M, VIP on lo, sluice-decap, default route
#              via the router; HTTP :80, TCP/UDP echo :7 (scripts/testbed_server.py)
#
# The VIP 192.0.2.10 (:80 and :7, dsr-ipip) is announced by every instance
# whose dataplane is alive and has a quorum of healthy backends. Replies go
# backend -> router -> client.
#
#   scripts/testbed-ecmp.sh up              build the bed, start every instance
#   scripts/testbed-ecmp.sh down            stop everything, delete every namespace
#   scripts/testbed-ecmp.sh status          namespaces, processes, the router's route
#   scripts/testbed-ecmp.sh kill N          kill -9 instance N (dataplane, control plane, BIRD)
#   scripts/testbed-ecmp.sh start N         (re)start instance N
#   scripts/testbed-ecmp.sh stop N          graceful: control plane (withdraws) first, then the rest
#   scripts/testbed-ecmp.sh restart N       hitless restart of instance N's dataplane (its flows
#                                           saved on SIGTERM, adopted by the new process)
#   scripts/testbed-ecmp.sh cut N           instance N's link down (a host failure: no FIN,
#                                           no BGP notification; only BFD tells the router)
#   scripts/testbed-ecmp.sh uncut N         its link up again
#   scripts/testbed-ecmp.sh route           the router's kernel route to the VIP
#
# Environment: SLUICE_TB_PREFIX (namespace prefix, default "se"), SLUICE_TB_LBS
# (instances, default 3), SLUICE_TB_BACKENDS (default 2), SLUICE_BUILD_DIR,
# SLUICE_TB_PREPEND_N="N:K" (instance N announces with K extra AS-path copies:
# an active-passive set-up), SLUICE_TB_MODE (default dsr-ipip),
# SLUICE_TB_DROP_SNAPSHOT=1 (restart N: delete the flow snapshot before the new
# dataplane starts, a control run of what the snapshot saves), SLUICE_TB_CP_ARGS
# (extra sluice-controlplane options, e.g. "--heartbeat-max-age-ms 10000").
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$(pwd)
prefix=${SLUICE_TB_PREFIX:-se}
n_lbs=${SLUICE_TB_LBS:-3}
n_backends=${SLUICE_TB_BACKENDS:-2}
mode=${SLUICE_TB_MODE:-dsr-ipip}
state=/run/sluice-testbed-ecmp-$prefix

ns_client=$prefix-client
ns_router=$prefix-router
lb_ns() { echo "$prefix-lb$1"; }
be_ns() { echo "$prefix-be$1"; }

vip4=192.0.2.10
router_mac=02:54:00:00:00:01
lb_mac() { printf '02:54:00:00:00:%02x' "$((16 + $1))"; }
lb_kernel() { echo "198.51.100.$((20 + $1))"; }
lb_own() { echo "198.51.100.$((30 + $1))"; }
lb_pool() { echo "198.51.100.$((40 + $1))"; }
be_mac() { printf '02:54:00:00:01:%02x' "$1"; }
be_addr() { echo "198.51.100.$((10 + $1))"; }
peer_port=7900

log() { echo "testbed-ecmp: $*"; }
die() {
  echo "testbed-ecmp: error: $*" >&2
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

offloads_off() { in_ns "$1" ethtool -K "$2" tx off tso off gso off gro off >/dev/null 2>&1 || true; }

new_ns() {
  ip netns add "$1"
  in_ns "$1" ip link set lo up
  in_ns "$1" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
}

veth_seq=0
veth() { # ns_a if_a ns_b if_b: born under names unique to this run
  veth_seq=$((veth_seq + 1))
  local ta=te$$x${veth_seq}a tb=te$$x${veth_seq}b
  ip link add "$ta" type veth peer name "$tb"
  ip link set "$ta" netns "$1"
  ip link set "$tb" netns "$3"
  in_ns "$1" ip link set "$ta" name "$2"
  in_ns "$3" ip link set "$tb" name "$4"
  offloads_off "$1" "$2"
  offloads_off "$3" "$4"
}

start_daemon() { # name ns command...
  local name=$1 ns=$2
  shift 2
  setsid ip netns exec "$ns" "$@" >>"$state/$name.log" 2>&1 </dev/null &
  echo $! >"$state/$name.pid"
}

stop_daemon() { # name signal [timeout_s]
  local pidf=$state/$1.pid pid i
  [[ -f $pidf ]] || return 0
  pid=$(cat "$pidf")
  if kill -0 "$pid" 2>/dev/null; then
    kill "-$2" "$pid" 2>/dev/null || true
    for ((i = 0; i < ${3:-5} * 10; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidf"
}

write_router_bird() {
  local f=$state/router-bird.conf i
  {
    echo "router id 198.51.100.1;"
    echo "protocol device { scan time 10; }"
    echo "protocol bfd { interface \"*\" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }; }"
    echo "protocol kernel { ipv4 { import none; export all; }; merge paths on; }"
    echo "template bgp balancer {"
    echo "  local as 65000; hold time 9; connect delay time 1; connect retry time 5;"
    echo "  error wait time 1, 10; bfd on;"
    echo "  ipv4 { import filter { if net ~ [ 192.0.2.0/24{32,32}, 198.51.100.0/24{32,32} ] then accept; reject; }; export none; };"
    echo "}"
    for ((i = 1; i <= n_lbs; i++)); do
      echo "protocol bgp lb$i from balancer { neighbor $(lb_kernel "$i") as 65001; }"
    done
  } >"$f"
}

write_cp_config() {
  local i
  {
    echo "instance: ecmp"
    echo "services:"
    for port in 80 7; do
      echo "  - name: svc$port"
      echo "    vip: $vip4"
      echo "    port: $port"
      echo "    mode: $mode"
      echo "    quorum: 1"
      echo "    health: {check: tcp, interval_ms: 200, timeout_ms: 150, rise: 1, fall: 2}"
      echo "    backends:"
      for ((i = 1; i <= n_backends; i++)); do
        echo "      - {address: $(be_addr "$i")}"
      done
    done
  } >"$state/cp.yaml"
}

prepend_of() { # N: extra AS-path copies for instance N
  local spec=${SLUICE_TB_PREPEND_N:-}
  [[ -n $spec && ${spec%%:*} == "$1" ]] && echo "${spec#*:}" || echo 0
}

start_dataplane() { # N: the dataplane of instance N, adopting its flow snapshot if any
  local n=$1 build ns dp steer_obj
  build=$(cat "$state/build_dir")
  ns=$(lb_ns "$n")
  dp=$build/dataplane/sluice-dataplane
  steer_obj=$(cd "$build" && pwd)/bpf/vip_steer.bpf.o
  local shm=/dev/shm/sluice-$prefix-lb$n
  local neigh=(--neigh "198.51.100.1=$router_mac") i
  for ((i = 1; i <= n_backends; i++)); do
    neigh+=(--neigh "$(be_addr "$i")=$(be_mac "$i")")
  done
  ulimit -l unlimited 2>/dev/null || true
  # A dataplane killed with -9 leaves its XDP program attached: detach it.
  in_ns "$ns" ip link set lb0 xdp off 2>/dev/null || true
  in_ns "$ns" ip link set lb0 xdpgeneric off 2>/dev/null || true
  local lines=0
  [[ -f $state/dataplane$n.log ]] && lines=$(wc -l <"$state/dataplane$n.log")
  start_daemon "dataplane$n" "$ns" "$dp" -l 0,1 --no-pci --file-prefix "$prefix-lb$n" --no-huge \
    -m 512 --no-shconf --log-level '*:warning' \
    --vdev "net_af_xdp0,iface=lb0,start_queue=0,queue_count=1,xdp_prog=$steer_obj" -- \
    --port 0 --shm-path "$shm" --instance "$prefix-lb$n" --addr "$(lb_own "$n")/24" \
    --nat-pool "$(lb_pool "$n")" --gateway 198.51.100.1 "${neigh[@]}" --flow-table-size 65536 \
    --flow-snapshot "$state/lb$n.flows"
  local t
  for ((t = 0; t < 100; t++)); do
    tail -n +$((lines + 1)) "$state/dataplane$n.log" 2>/dev/null | grep -q '^port 0:' && break
    kill -0 "$(cat "$state/dataplane$n.pid")" 2>/dev/null || break
    sleep 0.1
  done
  tail -n +$((lines + 1)) "$state/dataplane$n.log" | grep -q '^port 0:' || {
    tail -n 15 "$state/dataplane$n.log" >&2
    die "sluice-dataplane of lb$n did not start"
  }
}

start_instance() { # N
  local n=$1 build ns cp
  build=$(cat "$state/build_dir")
  ns=$(lb_ns "$n")
  cp=$build/controlplane/sluice-controlplane
  local shm=/dev/shm/sluice-$prefix-lb$n
  # The dataplane first: the control plane only announces while it runs.
  start_dataplane "$n"
  local peers=() j
  for ((j = 1; j <= n_lbs; j++)); do
    ((j == n)) || peers+=(--peer "$(lb_kernel "$j"):$peer_port")
  done
  rm -f "$state/lb$n.state.yaml"
  start_daemon "controlplane$n" "$ns" "$cp" --config "$state/cp.yaml" --instance "$prefix-lb$n" \
    --shm-path "$shm" --socket "$state/lb$n.sock" --state-file "$state/lb$n.state.yaml" \
    --metrics "$(lb_kernel "$n"):9700" \
    --steer-iface lb0 --steer-own "$(lb_own "$n")" --steer-nat-pool "$(lb_pool "$n")" \
    --bgp-include "$state/lb$n.bird-include.conf" --bird-socket "$state/lb$n.bird.ctl" \
    --bgp-local-as 65001 --bgp-neighbor 198.51.100.1,65000 --bgp-prepend "$(prepend_of "$n")" \
    --peer-listen "$(lb_kernel "$n"):$peer_port" "${peers[@]}" \
    --flow-snapshot "$state/lb$n.flows" --restart-hold-ms 15000 ${SLUICE_TB_CP_ARGS:-}
  # BIRD last: it reads the include file the control plane writes (an empty one
  # until then).
  [[ -f $state/lb$n.bird-include.conf ]] || : >"$state/lb$n.bird-include.conf"
  {
    echo "router id $(lb_kernel "$n");"
    echo "protocol device { scan time 10; }"
    echo "include \"$state/lb$n.bird-include.conf\";"
  } >"$state/lb$n.bird.conf"
  start_daemon "bird$n" "$ns" bird -f -c "$state/lb$n.bird.conf" -s "$state/lb$n.bird.ctl"
}

stop_instance() { # N signal
  local n=$1 sig=$2 name
  if [[ $sig == KILL ]]; then
    # All at once, as a host failure would.
    local pids=()
    for name in controlplane dataplane bird; do
      [[ -f $state/$name$n.pid ]] && pids+=("$(cat "$state/$name$n.pid")")
    done
    ((${#pids[@]})) && kill -KILL "${pids[@]}" 2>/dev/null || true
  fi
  # Withdraw first (the control plane's SIGTERM), stop second.
  stop_daemon "controlplane$n" TERM 5
  stop_daemon "dataplane$n" TERM 10
  stop_daemon "bird$n" TERM 5
  rm -f "/dev/shm/sluice-$prefix-lb$n" "/dev/shm/sluice-$prefix-lb$n.lock" "$state/lb$n.flows"
}

cmd_down() {
  local ns f
  if [[ -d $state ]]; then
    for f in "$state"/*.pid; do
      [[ -e $f ]] && stop_daemon "$(basename "$f" .pid)" TERM 5
    done
  fi
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^$prefix-(client|router|lb[0-9]+|be[0-9]+)$" || true); do
    local pids
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [[ -n $pids ]] && kill -KILL $pids 2>/dev/null || true
    ip netns del "$ns"
  done
  rm -f /dev/shm/sluice-"$prefix"-lb*
  rm -rf "$state"
}

cmd_up() {
  [[ $(id -u) -eq 0 ]] || die "must run as root"
  command -v bird >/dev/null || die "bird (Debian bird2) is not installed: scripts/setup.sh"
  cmd_down >/dev/null 2>&1 || true
  mkdir -p "$state"
  local build i
  build=$(find_build_dir)
  [[ -x $build/controlplane/sluice-controlplane && -f $build/bpf/vip_steer.bpf.o ]] ||
    die "$build: sluice-controlplane or bpf/vip_steer.bpf.o not built"
  echo "$build" >"$state/build_dir"

  new_ns "$ns_client"
  new_ns "$ns_router"
  veth "$ns_client" c0 "$ns_router" r-c
  for i in 10 11 12 13; do
    in_ns "$ns_client" ip addr add "203.0.113.$i/24" dev c0
  done
  in_ns "$ns_client" ip link set c0 up
  in_ns "$ns_client" ip route add default via 203.0.113.1
  in_ns "$ns_router" ip addr add 203.0.113.1/24 dev r-c
  in_ns "$ns_router" ip link set r-c up
  in_ns "$ns_router" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1
  in_ns "$ns_router" ip link add br0 address "$router_mac" type bridge
  in_ns "$ns_router" ip link set br0 type bridge stp_state 0 forward_delay 0
  in_ns "$ns_router" ip addr add 198.51.100.1/24 dev br0
  in_ns "$ns_router" ip link set br0 up
  offloads_off "$ns_router" br0

  for ((i = 1; i <= n_backends; i++)); do
    local ns
    ns=$(be_ns "$i")
    new_ns "$ns"
    in_ns "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
    veth "$ns" eth0 "$ns_router" "r-be$i"
    in_ns "$ns" ip link set eth0 address "$(be_mac "$i")"
    in_ns "$ns" ip addr add "$(be_addr "$i")/24" dev eth0
    in_ns "$ns" ip link set eth0 up
    in_ns "$ns" ip addr add "$vip4/32" dev lo
    in_ns "$ns" ip route add default via 198.51.100.1
    in_ns "$ns_router" ip link set "r-be$i" master br0 up
    start_daemon "server-be$i" "$ns" /usr/bin/python3 "$repo/scripts/testbed_server.py" "be$i"
    in_ns "$ns" "$build/bpf/sluice-decap" attach --iface eth0 --addr "$(be_addr "$i")" >/dev/null
  done

  write_cp_config
  for ((i = 1; i <= n_lbs; i++)); do
    local ns
    ns=$(lb_ns "$i")
    new_ns "$ns"
    veth "$ns" lb0 "$ns_router" "r-lb$i"
    in_ns "$ns" ip link set lb0 address "$(lb_mac "$i")"
    in_ns "$ns" ip addr add "$(lb_kernel "$i")/24" dev lb0
    in_ns "$ns" ip link set lb0 up
    in_ns "$ns_router" ip link set "r-lb$i" master br0 up
    # The dataplane answers ARP for its own address itself; static entries
    # make the first packet fast.
    in_ns "$ns_router" ip neigh replace "$(lb_own "$i")" lladdr "$(lb_mac "$i")" dev br0 nud permanent
  done
  write_router_bird
  start_daemon router-bird "$ns_router" bird -f -c "$state/router-bird.conf" -s "$state/router-bird.ctl"
  for ((i = 1; i <= n_lbs; i++)); do
    start_instance "$i"
  done
  log "up: $n_lbs instances, $n_backends backends, mode $mode, build $build"
}

cmd_status() {
  local ns f any=0
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^$prefix-(client|router|lb[0-9]+|be[0-9]+)$" | sort || true); do
    any=1
    echo "$ns"
  done
  ((any)) || {
    echo "testbed-ecmp: down"
    return 3
  }
  for f in "$state"/*.pid; do
    [[ -e $f ]] || continue
    local name pid
    name=$(basename "$f" .pid)
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then echo "$name: running (pid $pid)"; else echo "$name: dead"; fi
  done
  cmd_route
}

cmd_route() { in_ns "$ns_router" ip route show "$vip4"; }

# Hitless dataplane restart: SIGTERM saves every flow to the snapshot, the new
# process adopts it before taking traffic (docs/high-availability.md).
restart_dataplane() { # N
  local n=$1
  stop_daemon "dataplane$n" TERM 10
  # A control run: the new process starts without the saved flows.
  [[ ${SLUICE_TB_DROP_SNAPSHOT:-0} == 1 ]] && rm -f "$state/lb$n.flows"
  start_dataplane "$n"
  grep -E 'saved [0-9]+ flow|adopted [0-9]+ of|no flow snapshot' "$state/dataplane$n.log" | tail -n 2 || true
}

case ${1:-} in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
route) cmd_route ;;
kill | start | stop | restart | cut | uncut)
  [[ ${2:-} =~ ^[0-9]+$ ]] || die "usage: $0 $1 N"
  [[ -d $state ]] || die "the test bed is down"
  case $1 in
  kill) stop_instance "$2" KILL ;;
  stop) stop_instance "$2" TERM ;;
  start) start_instance "$2" ;;
  restart) restart_dataplane "$2" ;;
  cut) in_ns "$(lb_ns "$2")" ip link set lb0 down ;;
  uncut) in_ns "$(lb_ns "$2")" ip link set lb0 up ;;
  esac
  ;;
*)
  echo "usage: $0 up | down | status | route | kill N | start N | stop N | restart N | cut N | uncut N" >&2
  exit 2
  ;;
esac
