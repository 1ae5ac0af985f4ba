#!/usr/bin/python3
"""AF_XDP deployment on the namespace test bed (scripts/testbed.sh; root), driven
through sluice-controlplane --steer-iface and sluicectl:

  * dnat under its own health checks: HTTP and TCP checks every 200 ms on two
    dnat services. vip_steer must leave the checks' SYN-ACKs (addressed to the
    host's kernel address) with the kernel: every backend stays up for 3 s,
    HTTP and a TCP echo flow through the VIP, vip_steer counts passed_host and
    steered_reply, and a backend whose servers are killed is still taken out
    (the others keep answering).
  * `sluicectl ports` and /metrics show the port (rte_eth_stats, per queue),
    the AF_XDP socket's statistics and vip_steer's counters.
  * Drops nobody counted: the bed again with `--rx-desc 64` and long idle
    sleeps, so the socket's 64-entry RX ring overflows under a UDP burst; the
    socket's drop counters (rx_ring_full / rx_dropped) must move, in
    `sluicectl ports` and in sluice_port_xsk_* metrics.

usage: testbed_xdp_test.py SLUICE_DATAPLANE SLUICE_CONTROLPLANE SLUICECTL
Exit 0 pass, 1 fail, 77 skip (not root, not built, or no AF_XDP on this kernel).
"""

import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import testbed_cp_test as tb  # noqa: E402  (test bed and client helpers)
from itest_util import check, failures, run  # noqa: E402

PY = "/usr/bin/python3"
VIP = "192.0.2.40"
B = tb.B
METRICS = "127.0.0.1:9791"
CHECKS = "interval_ms: 200, timeout_ms: 300, rise: 2, fall: 2, jitter_pct: 10"
BACKENDS = f"[{{address: {B['be1']}}}, {{address: {B['be2']}}}, {{address: {B['be3']}}}]"
DNAT_CONFIG = f"""instance: {tb.PREFIX}
services:
  - name: web-dnat
    vip: {VIP}
    port: 80
    mode: dnat
    health: {{check: http, path: /, {CHECKS}}}
    backends: {BACKENDS}
  - name: echo-dnat
    vip: {VIP}
    port: 7
    mode: dnat
    health: {{check: tcp, {CHECKS}}}
    backends: {BACKENDS}
"""
UDP_CONFIG = f"""instance: {tb.PREFIX}
services:
  - name: udp-echo
    vip: {VIP}
    port: 7
    proto: udp
    mode: nat
    backends: {BACKENDS}
"""


def blast_main(argv):
    """Client side: `n` UDP datagrams to vip:port as fast as possible."""
    import socket
    vip, port, n = argv[0], int(argv[1]), int(argv[2])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = 0
    for i in range(n):
        try:
            s.sendto(b"x" * 64, (vip, port))
            sent += 1
        except OSError:
            pass
    print(json.dumps({"sent": sent}))
    return 0


def start_cp(log_name):
    log = open(f"{tb.RUN}/{log_name}", "w")
    p = subprocess.Popen(["ip", "netns", "exec", tb.NS_LB, tb.CONTROLPLANE, "--config",
                          f"{tb.RUN}/cp.yaml", "--shm-path", tb.SHM, "--socket", tb.SOCK,
                          "--state-file", f"{tb.RUN}/{log_name}.state.yaml", "--metrics", METRICS,
                          "--steer-iface", "lb0", "--steer-nat-pool", "198.51.100.9",
                          "--steer-own", "198.51.100.3"],
                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    for _ in range(100):
        if run([tb.SLUICECTL, "--socket", tb.SOCK, "status"], timeout=5).returncode == 0:
            return p
        if p.poll() is not None:
            break
        time.sleep(0.1)
    check(False, f"control plane answers ({open(f'{tb.RUN}/{log_name}').read()[-400:]})")
    return p


def stop_cp(cp):
    if cp is not None and cp.poll() is None:
        os.killpg(cp.pid, signal.SIGTERM)
        try:
            cp.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(cp.pid, signal.SIGKILL)


def ctl_json(*args):
    r = run([tb.SLUICECTL, "--socket", tb.SOCK, "--json", *args], timeout=20)
    try:
        return json.loads(r.stdout)
    except ValueError:
        return {"error": (r.stdout + r.stderr).strip()[-300:]}


def states(service):
    return {b["address"]: b.get("effective_state")
            for b in ctl_json("backend", "list", service).get("backends", [])}


def metrics():
    r = run(["ip", "netns", "exec", tb.NS_LB, PY, "-c",
             "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen("
             f"'http://{METRICS}/metrics', timeout=5).read().decode())"], timeout=20)
    return r.stdout


def metric(text, prefix):
    """Sum of the samples whose line starts with `prefix`."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(prefix))


def xsk_drops(port):
    return sum(q.get("xsk", {}).get(k, 0) for q in port.get("queues", [])
               for k in ("rx_ring_full", "rx_dropped"))


def dnat_under_health_checks():
    for i in (1, 2, 3):
        run(["ip", "netns", "exec", f"{tb.PREFIX}-be{i}", "ip", "route", "replace", "default",
             "via", "198.51.100.3"], timeout=10)
    with open(f"{tb.RUN}/cp.yaml", "w") as f:
        f.write(DNAT_CONFIG)
    cp = start_cp("cp-dnat.log")
    # Before the fix every check timed out and all backends were down in ~1 s
    # at this interval: 3 s is 15 check rounds.
    time.sleep(3)
    for svc in ("web-dnat", "echo-dnat"):
        st = states(svc)
        check(len(st) == 3 and all(s == "up" for s in st.values()),
              f"{svc}: every backend stays up under its own health checks: {st}")
    res = tb.client("stream", VIP, 80, 1.5, *tb.SRC4).result()
    check(res.get("n_errors", 1) == 0 and len(res.get("answers", {})) == 3,
          f"dnat HTTP through the VIP reaches every backend: {res}")
    echo = tb.client("echo", VIP, 7, 1.5, tb.SRC4[1]).result()
    check(not echo.get("errors") and echo.get("rounds", 0) > 10,
          f"dnat TCP echo through the VIP: {echo}")

    ports = ctl_json("ports")
    counters = ports.get("steer", {}).get("counters", {})
    check(counters.get("passed_host", 0) > 0 and counters.get("steered_reply", 0) > 0
          and counters.get("redirected", 0) > 0,
          f"vip_steer: health-check replies passed to the host, dnat replies steered: {counters}")
    plist = ports.get("ports", [])
    check(len(plist) == 1 and plist[0].get("driver") == "net_af_xdp"
          and plist[0].get("stats", {}).get("ipackets", 0) > 0
          and plist[0].get("queues", [{}])[0].get("ipackets", 0) > 0,
          f"sluicectl ports: the AF_XDP port with per-queue counters: {str(plist)[:400]}")
    check(bool(plist) and plist[0].get("xsk_sockets_found") == 1
          and "rx_ring_full" in plist[0].get("queues", [{}])[0].get("xsk", {}),
          f"sluicectl ports: the AF_XDP socket's statistics: {str(plist)[:400]}")
    text = run([tb.SLUICECTL, "--socket", tb.SOCK, "ports"], timeout=20).stdout
    check("XSK_RX_FULL" in text and "vip_steer on lb0" in text,
          f"sluicectl ports table:\n{text}")
    m = metrics()
    check(metric(m, 'sluice_port_rx_packets_total{port="0"') > 0
          and 'sluice_port_xsk_rx_ring_full_total{port="0"' in m
          and metric(m, 'sluice_xdp_steer_packets_total{iface="lb0",counter="passed_host"}') > 0,
          "metrics: sluice_port_* and sluice_xdp_steer_packets_total")

    # A killed backend is still taken out, and the others keep answering.
    pid = int(open(f"/run/sluice-testbed-{tb.PREFIX}/server-be2.pid").read())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if states("web-dnat").get(B["be2"]) == "down" and \
                states("echo-dnat").get(B["be2"]) == "down":
            break
        time.sleep(0.1)
    st_web, st_echo = states("web-dnat"), states("echo-dnat")
    check(st_web.get(B["be2"]) == "down" and st_echo.get(B["be2"]) == "down"
          and st_web.get(B["be1"]) == "up" and st_web.get(B["be3"]) == "up",
          f"killed be2 is taken out by the HTTP and TCP checks, the others stay up: "
          f"{st_web} {st_echo}")
    res = tb.client("stream", VIP, 80, 1.5, *tb.SRC4).result()
    check(res.get("n_errors", 1) == 0 and set(res.get("answers", {})) == {"be1", "be3"},
          f"after be2's death traffic flows to be1 and be3: {res}")
    return cp


def ring_overflow():
    with open(f"{tb.RUN}/cp.yaml", "w") as f:
        f.write(UDP_CONFIG)
    cp = start_cp("cp-ring.log")
    before = ctl_json("ports").get("ports", [{}])
    check(bool(before) and "queues" in before[0],
          f"ports before the burst: {str(before)[:300]}")
    base = xsk_drops(before[0]) if before else 0
    r = run(["ip", "netns", "exec", tb.NS_CLIENT, PY, os.path.abspath(__file__), "--blast", VIP,
             "7", "30000"], timeout=60)
    print(f"burst: {r.stdout.strip()}")
    time.sleep(0.5)
    after = ctl_json("ports").get("ports", [{}])
    drops = xsk_drops(after[0]) - base if after else 0
    check(drops > 0, f"the 64-entry AF_XDP RX ring overflowed and its drops are counted: +{drops} "
          f"({str(after[0].get('queues') if after else None)[:300]})")
    m = metrics()
    check(metric(m, "sluice_port_xsk_rx_ring_full_total") +
          metric(m, "sluice_port_xsk_rx_dropped_total") > 0,
          "metrics: sluice_port_xsk_rx_ring_full_total / rx_dropped_total moved")
    return cp


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        return tb.client_main(sys.argv[2:])
    if len(sys.argv) > 1 and sys.argv[1] == "--blast":
        return blast_main(sys.argv[2:])
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    dataplane, tb.CONTROLPLANE, tb.SLUICECTL = map(os.path.abspath, sys.argv[1:4])
    tb.BUILD = os.path.dirname(os.path.dirname(dataplane))
    tb.STEERED = True
    if os.geteuid() != 0:
        print("SKIP: needs root (network namespaces, XDP)")
        return 77
    for b in (dataplane, tb.CONTROLPLANE, tb.SLUICECTL,
              os.path.join(tb.BUILD, "bpf", "sluice-steer")):
        if not os.access(b, os.X_OK):
            print(f"SKIP: {b} is not built")
            return 77
    os.makedirs(tb.RUN, exist_ok=True)
    os.environ["SLUICE_TB_DRIVER"] = "af_xdp"
    cp = None
    try:
        up = tb.testbed("up")
        print(up.stdout + up.stderr, end="")
        if up.returncode != 0:
            print("SKIP: the test bed cannot run the dataplane on AF_XDP here")
            return 77
        cp = dnat_under_health_checks()
        stop_cp(cp)
        cp = None
        os.environ["SLUICE_TB_DP_ARGS"] = "--rx-desc 64 --idle-sleep-us 1000 --idle-sleep-max-us 20000"
        up = tb.testbed("up")
        print(up.stdout + up.stderr, end="")
        if check(up.returncode == 0 and "descriptors rx 64" in up.stdout,
                 "test bed up with a 64-entry RX ring"):
            cp = ring_overflow()
    except subprocess.TimeoutExpired as e:
        check(False, f"timed out: {e.cmd}")
    finally:
        stop_cp(cp)
        if failures:
            for name in ("cp-dnat.log", "cp-ring.log"):
                if os.path.exists(f"{tb.RUN}/{name}"):
                    print(f"--- {name}\n" + open(f"{tb.RUN}/{name}").read()[-1500:])
        down = tb.testbed("down", timeout=60)
        check(down.returncode == 0, "test bed down")
        run(["rm", "-rf", tb.RUN, tb.SHM + ".lock"])
        check(f"{tb.PREFIX}-" not in run(["ip", "netns", "list"]).stdout,
              "no namespace left behind")
    print("FAILED:" if failures else "PASSED", *failures, sep="\n  ")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
