#!/usr/bin/env bash
# Load through the real binaries: sluice-dataplane (one worker, pinned) and
# sluice-pktgen (pinned to another core) connected by two memif links, tables
# published by publish_tables (the control plane's publisher, without the
# daemon). Runs a matrix of case x mode x flow count and prints a Markdown
# table built from pktgen's JSON summaries (docs/benchmarking.md).
#
#   scripts/bench-load.sh [options]          (root: hugepages, EAL)
#
#   --cases LIST     established,reverse,churn,syn-flood,ack-flood,mixed,ceiling
#                    (default: established,churn,ceiling). mixed = established
#                    (both directions in nat/dnat) + churn + a SYN flood at once
#   --modes LIST     nat,dnat,dsr-l2,dsr-ipip,dsr-gue (default: all)
#   --flows LIST     established flow counts (default: 1,1000,1000000)
#   --rate PPS       offered rate of established cases (default: as fast as
#                    pktgen goes; with --ndr the search's upper bound, 20000000)
#   --cps N          churn: new connections per second (default 200000)
#   --pool N         full-NAT pool addresses (default: one per 60,000 ports the
#                    case needs, see write_profile); --pool 1 measures the
#                    connection rate one pool address sustains
#   --flood-pps N    flood cases: spoofed packets per second (default 2000000)
#   --synproxy MODE  off|on|auto: SYN cookies for the nat/dnat services
#                    (publish_tables --synproxy; default: the service default, off).
#                    With on/auto the churn clients send their first request
#                    REQUEST_DELAY_MS (default 100) after the handshake's ACK:
#                    the proxy drops data until the backend side is open and
#                    the stateless clients do not retransmit
#   --duration S     seconds per run or NDR trial (default 5)
#   --ndr            binary-search the zero-loss rate of established, reverse
#                    and churn cases (churn: --cps is the upper bound)
#   --frame SIZE     frame size or imix (default 64)
#   --workers N      dataplane workers (default 1); cores 1..N, pktgen on N+1
#                    (or on core 0 when the machine has no more)
#   --check          functional mode for the test suite: the mixed case in
#                    every mode at a modest rate for 2 s, then the churn case
#                    in nat (one pool address, 2,000 new connections/s for
#                    2 s); exit 1 unless every run has zero loss, no failed
#                    connection, no rewrite mismatch and traffic in both
#                    directions
#   --build DIR      build directory (default: build)
#   --out DIR        keep profiles, logs and JSON summaries there
#
# Exit 0 when every run finished (and, with --check, passed); 77 without root.
set -euo pipefail
cd "$(dirname "$0")/.."

cases=established,churn,ceiling
modes=nat,dnat,dsr-l2,dsr-ipip,dsr-gue
flows_list=1,1000,1000000
rate=
cps=200000
pool_n=
synproxy=
flood_pps=2000000
duration=5
ndr=0
frame=64
workers=1
check=0
build=build
out=
while (($#)); do
  case $1 in
  --cases) cases=$2; shift ;;
  --modes) modes=$2; shift ;;
  --flows) flows_list=$2; shift ;;
  --rate) rate=$2; shift ;;
  --cps) cps=$2; shift ;;
  --pool) pool_n=$2; shift ;;
  --synproxy) synproxy=$2; shift ;;
  --flood-pps) flood_pps=$2; shift ;;
  --duration) duration=$2; shift ;;
  --ndr) ndr=1 ;;
  --frame) frame=$2; shift ;;
  --workers) workers=$2; shift ;;
  --check) check=1 ;;
  --build) build=$2; shift ;;
  --out) out=$2; shift ;;
  -h | --help) sed -n '2,/^set -e/p' "$0" | sed 's/^# \{0,1\}//;$d'; exit 0 ;;
  *) echo "bench-load: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if [[ $(id -u) -ne 0 ]]; then
  echo "SKIP: bench-load needs root (hugepages, DPDK EAL)"
  exit 77
fi
dp_bin=$build/dataplane/sluice-dataplane
pg_bin=$build/dataplane/pktgen/sluice-pktgen
pub_bin=$build/tests/integration/publish_tables
for b in "$dp_bin" "$pg_bin" "$pub_bin"; do
  [[ -x $b ]] || { echo "bench-load: $b not built (ninja -C $build)" >&2; exit 1; }
done
free_hp=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages 2>/dev/null || echo 0)
if ((free_hp < 600)); then
  echo "SKIP: bench-load needs 600 free 2 MiB hugepages (have $free_hp)"
  exit 77
fi

if ((check)); then
  [[ $cases == established,churn,ceiling ]] && cases=mixed,churn
  check_cps=2000
  flows_list=1000
  rate=5000
  cps=500
  flood_pps=5000
  duration=2
  ndr=0
fi

tag=pl$$
work=${out:-$(mktemp -d /tmp/sluice-bench-load.XXXXXX)}
mkdir -p "$work"
sock=$work/lb.sock
shm=/dev/shm/sluice-$tag
dp_pid=
cleanup() {
  [[ -n $dp_pid ]] && kill -INT "$dp_pid" 2>/dev/null && wait "$dp_pid" 2>/dev/null || true
  rm -f "$shm" "$shm.lock" "$shm.telemetry" "$sock"
  [[ -z $out ]] && rm -rf "$work"
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ncpu=$(nproc)
dp_cores=0,1
pg_core=0
if ((workers > 1)); then
  dp_cores=0,$(seq -s, 1 "$workers")
fi
((workers + 1 < ncpu)) && pg_core=$((workers + 1))

# Closed connections keep their full-NAT port until the FIN timeout expires;
# the default 120 s would cap sustained churn at 64,512 / 120 s per pool
# address, so connection benchmarks shorten it to 5 s (not less: on a busy
# machine a FIN exchange can take seconds). --check keeps the default.
fin_timeout=${FIN_TIMEOUT:-$( ((check)) && echo 120 || echo 5)}
dp_mac_c=02:00:00:00:dd:01 dp_mac_b=02:00:00:00:dd:02
pg_mac_c=02:00:00:00:cc:01 pg_mac_b=02:00:00:00:cc:02
# memif rings of 2^12 slots (2^14 with --check, to absorb the scheduling
# hiccups of a shared machine without loss); MEMIF_RSIZE overrides.
ring=rsize=${MEMIF_RSIZE:-$( ((check)) && echo 14 || echo 12)}

write_profile() { # name case mode flows
  local name=$1 kind=$2 mode=$3 flows=$4 proto=tcp port=80 bport=8080 dir=forward
  [[ $mode == dsr-* ]] && bport=80
  [[ $kind == reverse ]] && dir=reverse
  [[ $kind == mixed && ($mode == nat || $mode == dnat) ]] && dir=both
  # One NAT pool address per 60,000 flows (a pool address has 64,512 ports);
  # a closed connection holds its port for the FIN timeout plus up to one 2 s
  # expiry sweep (and a second of slack).
  local pool=10.200.0.2 n need=$flows c=$cps p=$pool_n
  if ((check)) && [[ $kind == churn ]]; then
    c=$check_cps
    p=1
  fi
  [[ $kind == established || $kind == reverse || $kind == ceiling ]] ||
    need=$((flows + c * (fin_timeout + 3)))
  local n_pool=${p:-$((need / 60000 + 1))}
  ((n_pool > 250)) && n_pool=250
  for ((n = 1; n < n_pool; n++)); do pool+=", 10.200.0.$((n + 2))"; done
  local frames=$frame
  local r=${rate:-0}
  ((ndr)) && r=${rate:-20000000}
  [[ $kind == ceiling ]] && r=0
  cat >"$work/$name.yaml" <<EOF
name: $name
duration_s: $duration
drain_ms: 500
clients: 198.19.0.0/16
spoofed: 100.64.0.0/10
balancer:
  nat_pool: [$pool]
  encap_src4: 172.16.0.0/16
services:
  - name: svc
    vip: 198.18.0.10
    port: $port
    proto: $proto
    mode: $mode
    backends: [10.200.1.1:$bport, 10.200.1.2:$bport, 10.200.1.3:$bport]
traffic:
EOF
  case $kind in
  established | reverse | ceiling | mixed)
    cat >>"$work/$name.yaml" <<EOF
  - type: established
    service: svc
    flows: $flows
    rate_pps: $r
    frame: $frames
    direction: $dir
EOF
    ;;&
  churn | syn-flood | ack-flood | mixed)
    [[ $kind == established || $kind == reverse || $kind == ceiling ]] && return 0
    cat >>"$work/$name.yaml" <<EOF
  - type: churn
    service: svc
    conns_per_s: $c
    requests: 1
    request_bytes: 64
    response_bytes: 256
    close: fin
EOF
    if [[ $synproxy == on || $synproxy == auto ]]; then
      echo "    request_delay_ms: ${REQUEST_DELAY_MS:-100}" >>"$work/$name.yaml"
    fi
    if [[ $kind != churn ]]; then
      local flood=$kind
      [[ $kind == mixed ]] && flood=syn-flood
      cat >>"$work/$name.yaml" <<EOF
  - type: $flood
    service: svc
    rate_pps: $flood_pps
EOF
    fi
    ;;
  esac
}

start_dataplane() { # profile
  local args
  args=$(scripts/gen-lab-profiles.py "$1" --sluice-args)
  local dp_extra pub
  dp_extra=$(python3 -c 'import json,sys; print(" ".join(json.loads(sys.argv[1])["dataplane"]))' "$args")
  pub=$(python3 -c 'import json,sys; print(" ".join(json.loads(sys.argv[1])["publish"]))' "$args")
  rm -f "$shm" "$sock"
  # shellcheck disable=SC2086
  "$dp_bin" -l "$dp_cores" --file-prefix "$tag-dp" --no-pci \
    --vdev "net_memif0,role=server,socket=$sock,id=0,mac=$dp_mac_c,$ring" \
    --vdev "net_memif1,role=server,socket=$sock,id=1,mac=$dp_mac_b,$ring" -- \
    --client-port 0 --backend-port 1 --addr 198.18.0.1/24@client --addr 10.200.0.1/16@backend \
    --gateway 198.18.0.254@client --neigh "198.18.0.254=$pg_mac_c" $dp_extra \
    --shm-path "$shm" --busy-poll --mtu 1600 --flow-table-size "$flow_table" \
    >"$work/$2.dp.log" 2>&1 &
  dp_pid=$!
  for _ in $(seq 100); do
    grep -q "forwarding" "$work/$2.dp.log" 2>/dev/null && break
    kill -0 "$dp_pid" 2>/dev/null || { cat "$work/$2.dp.log" >&2; return 1; }
    sleep 0.1
  done
  # shellcheck disable=SC2086
  "$pub_bin" --shm-path "$shm" $pub --timeout-fin "$fin_timeout" --ack-timeout-ms 5000 \
    ${synproxy:+--synproxy "$synproxy"} >/dev/null
}

stop_dataplane() {
  [[ -n $dp_pid ]] || return 0
  kill -INT "$dp_pid" 2>/dev/null || true
  wait "$dp_pid" 2>/dev/null || true
  dp_pid=
}

# Once pktgen's summary is out it stops polling and waits for the links to go
# down (--wait-peer-close): the dataplane is stopped first, so neither side
# tears memif rings down under a peer still polling them (the memif PMD's
# disconnect race, docs/benchmarking.md).
run_pktgen() { # name profile extra...
  local name=$1 profile=$2 pg rc=0
  shift 2
  timeout 600 "$pg_bin" -l "$pg_core" --file-prefix "$tag-pg" --no-pci "$@" -- \
    --profile "$profile" --json "$work/$name.json" --stats-interval-ms 1000 --wait-peer-close 20 \
    $( ((ndr)) && [[ $name == established* || $name == reverse* || $name == churn* ]] && echo --ndr) \
    >"$work/$name.pg.log" 2>&1 &
  pg=$!
  while kill -0 "$pg" 2>/dev/null && ! grep -qs "^waiting up to" "$work/$name.pg.log"; do
    sleep 0.2
  done
  stop_dataplane
  wait "$pg" || rc=$?
  return "$rc"
}

# MEMIF_ZC=1: pktgen's memif client ports in zero-copy mode (its mbufs are the
# shared buffers; needs --single-file-segments).
zc=
zc_eal=()
if [[ ${MEMIF_ZC:-0} == 1 ]]; then
  zc=,zero-copy=yes
  zc_eal=(--single-file-segments)
fi
pg_ports=("${zc_eal[@]}" --vdev "net_memif0,role=client,socket=$sock,id=0,mac=$pg_mac_c,$ring$zc"
  --vdev "net_memif1,role=client,socket=$sock,id=1,mac=$pg_mac_b,$ring$zc")
# (the memif client's rsize sets the ring size; the server's is ignored)

rows=()
failed=0
row() { # name case mode flows
  python3 - "$work/$1.json" "$2" "$3" "$4" "$check" <<'EOF'
import json, sys
path, case, mode, flows, check = sys.argv[1:]
j = json.load(open(path))
if "summary" in j:  # NDR search
    ndr = j
    j = j["summary"]
else:
    ndr = None
def mpps(x): return f"{x / 1e6:.3f}"
items = j["items"]
est = [i for i in items if i["type"] == "established"]
churn = [i for i in items if i["type"] == "churn"]
if est:
    st = est[0]["to_client"] if case == "reverse" else est[0]["to_backend"]
    lat = st["latency_us"]
    rate = mpps(st["rx_pps"]) + " Mpps"
    if ndr:
        rate = (f"NDR {mpps(st['rx_pps'])} Mpps" + (" (generator-limited)" if ndr["generator_limited"] else "")
                + (" (at --rate)" if ndr["limited_by_profile_rate"] else ""))
    detail = f"p50 {lat['p50']:.1f} / p99 {lat['p99']:.1f} / p99.9 {lat['p99_9']:.1f} us"
    if churn:
        c = churn[0]["connections"]
        detail += f"; conns completed {c['completed']} failed {c['failed']}"
else:
    c = churn[0]["connections"]
    rate = f"{c['completed_per_s']:.0f} conn/s"
    if ndr:
        rate = f"NDR {rate}" + (" (generator-limited)" if ndr["generator_limited"] else "")
    lat = c["connect_latency_us"]
    detail = (f"opened {c['opened']} completed {c['completed']} failed {c['failed']} reset {c['reset']}; "
              f"connect p50 {lat['p50']:.0f} / p99 {lat['p99']:.0f} us")
if "legit_completed_share" in j:
    detail += f"; legit share {100 * j['legit_completed_share']:.3f} %"
    for i in items:
        if i["type"].endswith("flood"):
            detail += (f"; {i['type']} sent {mpps(i['to_backend']['tx_pps'])} Mpps"
                       f" ({100 * i['delivered_share']:.1f} % delivered)")
ok = j["zero_loss"]
print(f"| {case} | {mode} | {flows} | {rate} | {j['lost']} | {j['mismatches']} | {detail} | {'yes' if ok else 'NO'} |")
if check == "1":
    both_ways = j["client_port"]["rx_packets"] > 0 or mode.startswith("dsr")
    sys.exit(0 if ok and j["mismatches"] == 0 and j["backend_port"]["rx_packets"] > 0 and both_ways else 1)
EOF
}

IFS=, read -ra case_list <<<"$cases"
IFS=, read -ra mode_list <<<"$modes"
IFS=, read -ra flow_counts <<<"$flows_list"
echo "bench-load: dataplane cores $dp_cores (worker(s) on 1..$workers), pktgen core $pg_core, work dir $work"
for kind in "${case_list[@]}"; do
  if [[ $kind == ceiling ]]; then
    for flows in "${flow_counts[@]}"; do
      name=ceiling-$flows
      write_profile "$name" ceiling dsr-l2 "$flows"
      if timeout 600 "$pg_bin" -l "$pg_core" --file-prefix "$tag-pg" --no-pci \
        --vdev "net_memif0,role=server,socket=$work/loop.sock,id=0,$ring" \
        --vdev "net_memif1,role=client,socket=$work/loop.sock,id=0,$ring" -- \
        --profile "$work/$name.yaml" --loopback --json "$work/$name.json" >"$work/$name.pg.log" 2>&1; then
        rows+=("$(row "$name" ceiling "pktgen loop" "$flows" || true)")
      else
        rows+=("| ceiling | pktgen loop | $flows | run failed: see $work/$name.pg.log | | | | NO |")
        failed=1
      fi
      echo "${rows[-1]}"
    done
    continue
  fi
  for mode in "${mode_list[@]}"; do
    [[ $kind == reverse && $mode != nat && $mode != dnat ]] && continue
    ((check)) && [[ $kind == churn && $mode != nat ]] && continue
    fl=("${flow_counts[@]}")
    [[ $kind == established || $kind == reverse || $kind == mixed ]] || fl=(-)
    for flows in "${fl[@]}"; do
      f=$flows
      [[ $f == - ]] && f=1
      name=$kind-$mode-$f
      flow_table=$((f * 2 > 65536 ? f * 2 : 65536))
      # Connections: a closed one keeps its entry (and NAT port) for the FIN
      # timeout plus a sweep; a table smaller than that evicts closing entries
      # and late FIN-ACKs then meet no state (RST, failed connections).
      kc=$cps
      ((check)) && [[ $kind == churn ]] && kc=$check_cps
      need_ft=$((2 * kc * (fin_timeout + 3)))
      [[ $kind == established || $kind == reverse ]] || flow_table=$((need_ft > flow_table ? need_ft : flow_table))
      # Floods: the dataplane's default table (a flood fills a small one in
      # milliseconds, which would measure the table size, not the balancer).
      [[ $kind == *flood || $kind == mixed ]] && ((!check)) && flow_table=$((flow_table > 1048576 ? flow_table : 1048576))
      ((flow_table > 4194304)) && flow_table=4194304
      write_profile "$name" "$kind" "$mode" "$f"
      if ! start_dataplane "$work/$name.yaml" "$name"; then
        rows+=("| $kind | $mode | $flows | dataplane failed: see $work/$name.dp.log | | | | NO |")
        failed=1
        stop_dataplane
        echo "${rows[-1]}"
        continue
      fi
      if run_pktgen "$name" "$work/$name.yaml" "${pg_ports[@]}"; then
        if r=$(row "$name" "$kind" "$mode" "$flows"); then
          rows+=("$r")
        else
          rows+=("$r")
          failed=1
        fi
      else
        rows+=("| $kind | $mode | $flows | pktgen failed: see $work/$name.pg.log | | | | NO |")
        failed=1
        ((check)) && tail -5 "$work/$name.pg.log" >&2
      fi
      stop_dataplane
      grep -h "^stats:" "$work/$name.dp.log" | sed 's/^/    dataplane /' >>"$work/$name.pg.log" || true
      echo "${rows[-1]}"
    done
  done
done

echo
echo "| case | mode | flows | received rate | lost | mismatches | latency / connections | zero loss |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
if ((check && failed)); then
  echo "bench-load: FAILED (logs in $work)" >&2
  out=$work # keep the logs
  exit 1
fi
exit 0
