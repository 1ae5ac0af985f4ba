#!/usr/bin/python3
"""End to end with real TCP/UDP: scripts/testbed.sh brings up client, router,
balancer and three backends in network namespaces; sluice-dataplane runs on the
balancer's veth (net_af_xdp with vip_steer, or net_af_packet); backends
decapsulate with sluice-decap. Services are published with publish_tables.

Checks, each with HTTP requests from four client addresses:
  * dsr-ipip (IPv4, IPv6 6in6), nat (IPv4 and IPv6), dsr-gue (IPv4, IPv6),
    dsr-l2 (IPv4, IPv6), dnat (IPv4, IPv6): every backend answers a fair share, and
    with weights 1:1:2 the shares follow the weights; the backend sees the NAT-pool
    address in nat mode and the client's address otherwise;
  * UDP echo through dsr-ipip and nat;
  * a long-lived TCP connection keeps its backend while a backend is added, and
    new connections reach the added backend.

usage: testbed_test.py SLUICE_DATAPLANE PUBLISH_TABLES
Exit 0 pass, 1 fail, 77 skip (not root, binaries missing).
"""

import collections
import json
import os
import subprocess
import sys
import time

from itest_util import check, failures, run, run_testbed  # noqa: E402

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TESTBED = os.path.join(REPO, "scripts", "testbed.sh")
CLIENT = os.path.join(HERE, "testbed_client.py")

PREFIX = f"st{os.getpid() % 100000}"
NS_CLIENT, NS_LB = f"{PREFIX}-client", f"{PREFIX}-lb"
SHM = f"/dev/shm/sluice-{PREFIX}-tb"
VIP4, VIP6 = "192.0.2.10", "2001:db8::10"
SRC4 = [f"203.0.113.{i}" for i in (10, 11, 12, 13)]
SRC6 = [f"2001:db8:c::{i}" for i in (10, 11, 12, 13)]
BACKENDS = ["be1", "be2", "be3"]
B4 = {f"be{i}": f"198.51.100.{10 + i}" for i in (1, 2, 3)}
B6 = {f"be{i}": f"2001:db8:b::{10 + i}" for i in (1, 2, 3)}
NAT4, NAT6 = "198.51.100.9", "2001:db8:b::9"
LB_OWN4 = "198.51.100.3"
REQUESTS = 60

def testbed(*args, timeout=120):
    return run_testbed(TESTBED, PREFIX, BUILD, *args, timeout=timeout)


def in_client(*args, timeout=60):
    r = run(["ip", "netns", "exec", NS_CLIENT, sys.executable, CLIENT, *args], timeout=timeout)
    if r.returncode != 0:
        print(r.stderr)
        return []
    return json.loads(r.stdout)


def publish(*services):
    """services: (spec, [backend, ...]) pairs, publish_tables syntax."""
    cmd = [PUBLISH, "--shm-path", SHM]
    for spec, backends in services:
        cmd += ["--service", spec]
        for b in backends:
            cmd += ["--backend", b]
    r = run(cmd, timeout=30)
    return check(r.returncode == 0, f"published {[s for s, _ in services]}: {r.stdout.strip()}"
                 f"{r.stderr.strip()}")


def backends_of(names, table, port):
    return [f"[{table[n]}]:{port}" if ":" in table[n] else f"{table[n]}:{port}" for n in names]


def check_http(label, vip, sources, peer_expect, backends=BACKENDS):
    """peer_expect: a fixed address, or None for 'the client's own address'."""
    results = in_client("http", vip, "80", str(REQUESTS), *sources, timeout=120)
    errors = [r for r in results if r[1].startswith("error")]
    check(len(results) == REQUESTS and not errors,
          f"{label}: {REQUESTS} HTTP requests answered ({len(errors)} errors"
          f"{', first: ' + errors[0][1] if errors else ''})")
    counts = collections.Counter(r[1] for r in results if not r[1].startswith("error"))
    fair = REQUESTS // len(backends) // 3
    check(all(counts[b] >= fair for b in backends) and set(counts) <= set(backends),
          f"{label}: every backend got at least {fair} requests: {dict(counts)}")
    wrong_peer = [r for r in results if not r[1].startswith("error")
                  and r[2] != (peer_expect or r[0])]
    check(not wrong_peer, f"{label}: backends saw source "
          f"{peer_expect or 'the client address'}"
          f"{' (first wrong: ' + str(wrong_peer[0]) + ')' if wrong_peer else ''}")


def check_weighted(label, vip, sources, weights, requests=240):
    """New connections split in proportion to the weights (Maglev over the
    clients' random ports: a loose bound, 60 % to 150 % of each expected share)."""
    results = in_client("http", vip, "80", str(requests), *sources, timeout=180)
    counts = collections.Counter(r[1] for r in results if not r[1].startswith("error"))
    total_w = sum(weights.values())
    ok = len(results) == requests and sum(counts.values()) == requests
    for b, w in weights.items():
        want = requests * w / total_w
        ok = ok and 0.6 * want <= counts[b] <= 1.5 * want
    check(ok and counts[max(weights, key=weights.get)] > max(
        counts[b] for b in weights if b != max(weights, key=weights.get)),
        f"{label}: shares follow the weights {weights}: {dict(counts)}")


def check_udp(label, vip, sources, count=24):
    results = in_client("udp", vip, "7", str(count), *sources, timeout=120)
    ok = [r for r in results if not r[1].startswith("error")]
    check(len(ok) == count, f"{label}: {len(ok)}/{count} UDP echoes "
          f"(backends {dict(collections.Counter(r[1] for r in ok))})")


def set_backend_gateway(gw4, gw6):
    """dnat needs the backends' replies routed through the balancer."""
    for b in BACKENDS:
        run(["ip", "netns", "exec", f"{PREFIX}-{b}", "ip", "route", "replace", "default",
             "via", gw4], timeout=10)
        run(["ip", "netns", "exec", f"{PREFIX}-{b}", "ip", "-6", "route", "replace", "default",
             "via", gw6], timeout=10)


def long_lived():
    """dsr-ipip with be1, be2; a keep-alive connection; add be3; same backend."""
    svc = f"tcp:{VIP4}:80:dsr-ipip"
    if not publish((svc, backends_of(["be1", "be2"], B4, 80))):
        return
    p = subprocess.Popen(["ip", "netns", "exec", NS_CLIENT, sys.executable, CLIENT,
                          "keepalive", VIP4, "80", SRC4[0]],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        first = json.loads(p.stdout.readline() or '["error: no output", ""]')
        check(first[0] in ("be1", "be2"), f"long-lived: first answer from {first[0]}")
        publish((svc, backends_of(BACKENDS, B4, 80)))
        seen = []
        for _ in range(5):
            p.stdin.write("\n")
            p.stdin.flush()
            seen.append(json.loads(p.stdout.readline() or '["error: no output", ""]')[0])
            time.sleep(0.2)
        check(all(s == first[0] for s in seen),
              f"long-lived: connection stayed on {first[0]} after be3 was added: {seen}")
    finally:
        p.stdin.close()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
    results = in_client("http", VIP4, "80", str(REQUESTS), *SRC4, timeout=120)
    counts = collections.Counter(r[1] for r in results)
    check(counts["be3"] > 0, f"long-lived: new connections reach the added be3: {dict(counts)}")


def diagnostics():
    print("--- diagnostics")
    log = f"/run/sluice-testbed-{PREFIX}/dataplane.log"
    if os.path.exists(log):
        print("".join(open(log).readlines()[-10:]))
    steer = os.path.join(BUILD, "bpf", "sluice-steer")
    if os.path.exists(steer):
        print(run(["ip", "netns", "exec", NS_LB, steer, "status", "--iface", "lb0"]).stdout)
    decap = os.path.join(BUILD, "bpf", "sluice-decap")
    if os.path.exists(decap):
        print(run(["ip", "netns", "exec", f"{PREFIX}-be1", decap, "status", "--iface",
                   "eth0"]).stdout)


def main():
    global BUILD, PUBLISH
    steered = False
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    dataplane, PUBLISH = sys.argv[1], sys.argv[2]
    BUILD = os.path.dirname(os.path.dirname(os.path.abspath(dataplane)))
    if os.geteuid() != 0:
        print("SKIP: needs root (network namespaces, XDP)")
        return SKIP
    decap = os.path.join(BUILD, "bpf", "sluice-decap")
    for b in (dataplane, PUBLISH, decap):
        if not os.access(b, os.X_OK):
            print(f"SKIP: {b} is not built")
            return SKIP
    try:
        up = testbed("up")
        print(up.stdout + up.stderr, end="")
        if not check(up.returncode == 0, "test bed up"):
            return 1
        driver = open(f"/run/sluice-testbed-{PREFIX}/driver").read().strip()
        print(f"dataplane driver: net_{driver}")
        steered = driver == "af_xdp" and os.path.exists(
            os.path.join(BUILD, "bpf", "vip_steer.bpf.o"))
        if steered:
            r = run(["ip", "netns", "exec", NS_LB, os.path.join(BUILD, "bpf", "sluice-steer"),
                     "update", "--iface", "lb0",
                     "--vip", f"tcp:{VIP4}:80", "--vip", f"udp:{VIP4}:7",
                     "--vip", f"tcp:[{VIP6}]:80", "--vip", f"udp:[{VIP6}]:7",
                     "--nat-pool", NAT4, "--nat-pool", NAT6,
                     "--own", LB_OWN4, "--own", "2001:db8:b::3",
                     *[a for b in BACKENDS for a in ("--dnat-backend", f"tcp:{B4[b]}:80")],
                     *[a for b in BACKENDS for a in ("--dnat-backend", f"tcp:[{B6[b]}]:80")]],
                    timeout=10)
            check(r.returncode == 0, f"vip_steer map filled: {r.stdout.strip()}{r.stderr.strip()}")

        if publish((f"tcp:{VIP4}:80:dsr-ipip", backends_of(BACKENDS, B4, 80)),
                   (f"udp:{VIP4}:7:dsr-ipip", backends_of(BACKENDS, B4, 7))):
            check_http("dsr-ipip v4", VIP4, SRC4, None)
            check_udp("dsr-ipip v4", VIP4, SRC4)
        if publish((f"tcp:{VIP4}:80:nat", backends_of(BACKENDS, B4, 80)),
                   (f"udp:{VIP4}:7:nat", backends_of(BACKENDS, B4, 7)),
                   (f"tcp:[{VIP6}]:80:nat", backends_of(BACKENDS, B6, 80))):
            check_http("nat v4", VIP4, SRC4, NAT4)
            check_udp("nat v4", VIP4, SRC4)
            check_http("nat v6", VIP6, SRC6, NAT6)
        if publish((f"tcp:[{VIP6}]:80:dsr-gue", backends_of(BACKENDS, B6, 80)),
                   (f"tcp:{VIP4}:80:dsr-l2", backends_of(BACKENDS, B4, 80))):
            check_http("dsr-gue v6", VIP6, SRC6, None)
            check_http("dsr-l2 v4", VIP4, SRC4, None)
        if publish((f"tcp:[{VIP6}]:80:dsr-ipip", backends_of(BACKENDS, B6, 80)),
                   (f"tcp:{VIP4}:80:dsr-gue", backends_of(BACKENDS, B4, 80))):
            check_http("dsr-ipip v6 (6in6)", VIP6, SRC6, None)
            check_http("dsr-gue v4", VIP4, SRC4, None)
        if publish((f"tcp:[{VIP6}]:80:dsr-l2", backends_of(BACKENDS, B6, 80)),
                   (f"tcp:{VIP4}:80:nat",
                    [f"{B4['be1']}:80:1", f"{B4['be2']}:80:1", f"{B4['be3']}:80:2"])):
            check_http("dsr-l2 v6", VIP6, SRC6, None)
            check_weighted("nat v4, weights 1:1:2", VIP4, SRC4, {"be1": 1, "be2": 1, "be3": 2})
        set_backend_gateway(LB_OWN4, "2001:db8:b::3")
        if publish((f"tcp:{VIP4}:80:dnat", backends_of(BACKENDS, B4, 80)),
                   (f"tcp:[{VIP6}]:80:dnat", backends_of(BACKENDS, B6, 80))):
            check_http("dnat v4", VIP4, SRC4, None)
            check_http("dnat v6", VIP6, SRC6, None)
        set_backend_gateway("198.51.100.1", "2001:db8:b::1")
        long_lived()
        if steered:
            r = run(["ip", "netns", "exec", NS_LB, os.path.join(BUILD, "bpf", "sluice-steer"),
                     "status", "--iface", "lb0"], timeout=10)
            counters = dict(line.split() for line in r.stdout.splitlines()
                            if len(line.split()) == 2 and line.split()[1].isdigit())
            check(int(counters.get("steered_vip", 0)) > 0 and
                  int(counters.get("no_socket", 1)) == 0,
                  f"vip_steer steered VIP traffic to the AF_XDP socket: {counters}")
        if failures:
            diagnostics()
    except subprocess.TimeoutExpired as e:
        check(False, f"timed out: {e.cmd}")
        diagnostics()
    finally:
        down = testbed("down", timeout=60)
        print(down.stdout + down.stderr, end="")
        check(down.returncode == 0, "test bed down")
        left = run(["ip", "netns", "list"]).stdout
        check(f"{PREFIX}-" not in left, "no namespace left behind")
    print("FAILED:" if failures else "PASSED", *failures, sep="\n  ")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
