#!/usr/bin/python3
"""End-to-end test of the real sluice-dataplane binary on a net_pcap port.

Publishes two DSR-IPIP services with publish_tables into a private shared-memory
object, writes an input pcap, runs sluice-dataplane one-armed on
net_pcap(rx_pcap=in.pcap, tx_pcap=out.pcap), waits until the output stops
changing, stops it with SIGTERM and checks out.pcap packet by packet:

  * TCP SYN + data to the IPv4 VIP   -> two IPIP (4in4) packets to ONE backend
  * UDP to the IPv6 VIP              -> one 6in6 packet to its backend
  * TCP to a non-VIP address         -> nothing
  * ARP request for the IPv4 VIP     -> ARP reply from the port MAC

Encapsulated packets: dst MAC = the backend's (static) neighbour MAC, src MAC =
port MAC, outer source inside the encap prefix, outer destination = backend,
outer checksum valid (scapy recomputes and compares), inner packet byte-identical
to what was sent (TTL untouched).

usage: dataplane_pcap_test.py SLUICE_DATAPLANE PUBLISH_TABLES
Exit 0 pass, 1 fail, 77 skip.
"""

import glob
import ipaddress
import json
import os
import socket
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SKIP = 77

try:
    from scapy.all import (ARP, IP, TCP, UDP, Ether, IPv6, Raw, conf, rdpcap,
                           wrpcap)
    conf.verb = 0
except ImportError as e:  # pragma: no cover
    print(f"SKIP: python3-scapy is not installed ({e})")
    sys.exit(SKIP)

GW_MAC = "02:00:00:00:00:fe"   # the router clients come through
GW4 = "192.0.2.254"
CLIENT4 = "203.0.113.5"
CLIENT6 = "2001:db8:ffff::5"
VIP4 = "192.0.2.10"
VIP6 = "2001:db8::10"
OWN4 = "192.0.2.1/24"
OWN6 = "2001:db8::1/64"
BACKEND_NET4 = "10.0.0.1/24"
BACKEND_NET6 = "fd00:10::1/64"
BACKENDS4 = {"10.0.0.11": "02:00:00:00:01:11", "10.0.0.12": "02:00:00:00:01:12"}
BACKENDS6 = {"fd00:10::11": "02:00:00:00:01:61"}
ENCAP4 = ipaddress.ip_network("172.16.0.0/16")
ENCAP6 = ipaddress.ip_network("fd00:5100::/96")

failures = []


def check(cond, what):
    if cond:
        print(f"ok: {what}")
    else:
        print(f"FAIL: {what}")
        failures.append(what)
    return cond


def build_input():
    syn = (Ether(src=GW_MAC, dst="ff:ff:ff:ff:ff:ff") /
           IP(src=CLIENT4, dst=VIP4, ttl=61, id=1) /
           TCP(sport=40000, dport=80, flags="S", seq=1000))
    data = (Ether(src=GW_MAC, dst="ff:ff:ff:ff:ff:ff") /
            IP(src=CLIENT4, dst=VIP4, ttl=61, id=2) /
            TCP(sport=40000, dport=80, flags="PA", seq=1001, ack=5000) /
            Raw(b"GET / HTTP/1.0\r\n\r\n"))
    udp6 = (Ether(src=GW_MAC, dst="ff:ff:ff:ff:ff:ff") /
            IPv6(src=CLIENT6, dst=VIP6, hlim=60) /
            UDP(sport=5353, dport=53) / Raw(b"\x12\x34query"))
    non_vip = (Ether(src=GW_MAC, dst="ff:ff:ff:ff:ff:ff") /
               IP(src=CLIENT4, dst="192.0.2.99", ttl=61, id=3) /
               TCP(sport=40001, dport=80, flags="S"))
    arp = (Ether(src=GW_MAC, dst="ff:ff:ff:ff:ff:ff") /
           ARP(op=1, hwsrc=GW_MAC, psrc=GW4, hwdst="00:00:00:00:00:00", pdst=VIP4))
    return {"syn": syn, "data": data, "udp6": udp6, "non_vip": non_vip, "arp": arp}


def ipv4_checksum_ok(ip_layer):
    """True when the IPv4 header checksum is what scapy computes for it."""
    parsed = IP(bytes(ip_layer))
    sent = parsed.chksum
    del parsed.chksum
    return IP(bytes(parsed)).chksum == sent


def telemetry(tag, command):
    """Runs one DPDK telemetry command of the dataplane; returns the parsed reply."""
    paths = glob.glob(f"/var/run/dpdk/{tag}/dpdk_telemetry.v2") + \
        glob.glob(os.path.join(os.environ.get("XDG_RUNTIME_DIR", "/nonexistent"),
                               f"dpdk/{tag}/dpdk_telemetry.v2"))
    if not paths:
        return None
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.settimeout(5)
        s.connect(paths[0])
        s.recv(4096)  # greeting
        s.send(command.encode())
        return json.loads(s.recv(65536).decode())


def eal_memory_args():
    """Hugepages when free ones exist, otherwise plain memory."""
    try:
        with open("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages") as f:
            free = int(f.read())
        mounted = any(" hugetlbfs " in line for line in open("/proc/mounts"))
    except OSError:
        free, mounted = 0, False
    if os.environ.get("SLUICE_TEST_NO_HUGE") != "1" and os.geteuid() == 0 and mounted \
            and free >= 128:
        return ["--in-memory"], "hugepages"
    return ["--no-huge", "-m", "512", "--no-shconf"], "no hugepages (--no-huge)"


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    dataplane, publish = sys.argv[1], sys.argv[2]
    for b in (dataplane, publish):
        if not os.access(b, os.X_OK):
            print(f"SKIP: {b} is not built")
            return SKIP

    tag = f"itest-{os.getpid()}"
    shm_path = f"/dev/shm/sluice-{tag}"
    work = tempfile.mkdtemp(prefix="sluice-pcap-")
    in_pcap = os.path.join(work, "in.pcap")
    out_pcap = os.path.join(work, "out.pcap")
    proc = None
    try:
        pub = subprocess.run(
            [publish, "--shm-path", shm_path,
             "--service", f"tcp:{VIP4}:80:dsr-ipip",
             "--backend", "10.0.0.11:80:1", "--backend", "10.0.0.12:80:1",
             "--service", f"udp:[{VIP6}]:53:dsr-ipip",
             "--backend", "[fd00:10::11]:53:1"],
            capture_output=True, text=True, timeout=30)
        print(pub.stdout + pub.stderr, end="")
        if not check(pub.returncode == 0, "publish_tables published the services"):
            return 1

        inp = build_input()
        order = ["syn", "data", "udp6", "non_vip", "arp"]
        wrpcap(in_pcap, [inp[k] for k in order])

        mem_args, mem_desc = eal_memory_args()
        print(f"EAL memory: {mem_desc}")
        cmd = [dataplane, "-l", "0,1", "--no-pci", "--file-prefix", tag,
               "--log-level", "*:warning", *mem_args,
               "--vdev", f"net_pcap0,rx_pcap={in_pcap},tx_pcap={out_pcap}", "--",
               "--port", "0", "--shm-path", shm_path, "--instance", tag,
               "--addr", OWN4, "--addr", OWN6,
               "--addr", BACKEND_NET4, "--addr", BACKEND_NET6,
               "--gateway", GW4, "--flow-table-size", "65536"]
        for ip, mac in list(BACKENDS4.items()) + list(BACKENDS6.items()):
            cmd += ["--neigh", f"{ip}={mac}"]
        cmd += ["--neigh", f"{GW4}={GW_MAC}"]
        print("running:", " ".join(cmd))
        log_path = os.path.join(work, "dataplane.log")
        log = open(log_path, "w")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)

        # Wait for "forwarding", then until out.pcap stops changing.
        deadline = time.monotonic() + 30
        started = False
        while time.monotonic() < deadline and proc.poll() is None:
            if "forwarding" in open(log_path).read():
                started = True
                break
            time.sleep(0.1)
        if not started:
            proc.poll()
            print(open(log_path).read())
            check(False, f"dataplane started (exit code {proc.returncode})")
            return 1
        last, stable_since = -1, time.monotonic()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            size = os.path.getsize(out_pcap) if os.path.exists(out_pcap) else 0
            if size != last:
                last, stable_since = size, time.monotonic()
            elif time.monotonic() - stable_since >= 1.5:
                break
            time.sleep(0.1)
        # Introspection while forwarding: the two tracked flows (TCP v4, UDP v6).
        reply = telemetry(tag, "/sluice/conns,0,10")
        if check(reply is not None, "telemetry socket answers /sluice/conns"):
            conns = reply.get("/sluice/conns", {})
            fields = conns.get("fields", "").split()
            flows = [dict(zip(fields, row.split())) for row in conns.get("rows", [])]
            print("conns:", json.dumps(conns))
            check(conns.get("count") == 2 and conns.get("done") == 1,
                  f"two tracked flows listed on one page (got {conns.get('count')})")
            tcp = [f for f in flows if f.get("client") == CLIENT4]
            check(len(tcp) == 1 and tcp[0].get("client_port") == "40000" and
                  tcp[0].get("state") == "established",
                  "the TCP flow is listed established with its client")
            udp = [f for f in flows if f.get("client") == CLIENT6]
            # One datagram of a DSR flow (replies bypass the balancer): unanswered.
            check(len(udp) == 1 and udp[0].get("state") == "udp_unanswered",
                  "the UDP v6 flow is listed (udp_unanswered: a single datagram so far)")
            one = telemetry(tag, "/sluice/conns,0,1").get("/sluice/conns", {})
            check(one.get("count") == 1 and one.get("done") == 0, "the limit bounds one page")
            rest = telemetry(tag, f"/sluice/conns,{one.get('next')},10").get("/sluice/conns", {})
            check(rest.get("count") == 1 and rest.get("done") == 1 and
                  rest.get("rows") != one.get("rows"), "the next page holds the other flow")
            only = telemetry(tag, f"/sluice/conns,0,10,client={CLIENT6}/128,state=udp_unanswered")
            only = only.get("/sluice/conns", {})
            check(only.get("count") == 1 and CLIENT6 in only.get("rows", [""])[0],
                  "client prefix and state filters select the UDP v6 flow")
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        log.close()
        text = open(log_path).read()
        print("---- dataplane output ----\n" + text + "--------------------------")
        check(rc == 0, f"dataplane exited 0 on SIGTERM (got {rc})")

        m = re.search(r"port 0: .*mac ([0-9a-f:]{17})", text)
        if not check(m is not None, "dataplane printed the port summary with its MAC"):
            return 1
        port_mac = m.group(1)

        out = rdpcap(out_pcap) if os.path.exists(out_pcap) else []
        print(f"out.pcap holds {len(out)} packet(s):")
        for p in out:
            print("  ", p.summary())
        check(len(out) == 4, f"exactly 4 output packets (got {len(out)})")

        ipip4 = [p for p in out if IP in p and p[IP].proto == 4]
        ip6ip6 = [p for p in out if IPv6 in p and p[IPv6].nh == 41]
        arps = [p for p in out if ARP in p]

        # IPv4 VIP: SYN and data, IPIP to one backend.
        check(len(ipip4) == 2, f"two IPIP packets for the IPv4 VIP (got {len(ipip4)})")
        if len(ipip4) == 2:
            backends = {p[IP].dst for p in ipip4}
            check(len(backends) == 1, f"SYN and data go to the same backend ({backends})")
            for p, key in zip(ipip4, ["syn", "data"]):
                outer = p[IP]
                be = outer.dst
                check(be in BACKENDS4, f"{key}: outer dst {be} is a backend of the service")
                check(p[Ether].dst == BACKENDS4.get(be),
                      f"{key}: dst MAC {p[Ether].dst} is the backend's neighbour MAC")
                check(p[Ether].src == port_mac, f"{key}: src MAC {p[Ether].src} is the port MAC")
                check(ipaddress.ip_address(outer.src) in ENCAP4,
                      f"{key}: outer src {outer.src} inside {ENCAP4}")
                check(ipv4_checksum_ok(outer), f"{key}: outer IPv4 checksum valid")
                inner = bytes(outer.payload)
                check(inner == bytes(inp[key][IP]),
                      f"{key}: inner IPv4 packet unchanged (TTL {IP(inner).ttl})")

        # IPv6 VIP: 6in6 to its backend.
        check(len(ip6ip6) == 1, f"one 6in6 packet for the IPv6 VIP (got {len(ip6ip6)})")
        if len(ip6ip6) == 1:
            p = ip6ip6[0]
            outer = p[IPv6]
            check(outer.dst in BACKENDS6, f"udp6: outer dst {outer.dst} is the backend")
            check(p[Ether].dst == BACKENDS6.get(outer.dst),
                  f"udp6: dst MAC {p[Ether].dst} is the backend's neighbour MAC")
            check(p[Ether].src == port_mac, f"udp6: src MAC {p[Ether].src} is the port MAC")
            check(ipaddress.ip_address(outer.src) in ENCAP6,
                  f"udp6: outer src {outer.src} inside {ENCAP6}")
            check(outer.plen == len(bytes(outer.payload)), "udp6: outer payload length right")
            check(bytes(outer.payload) == bytes(inp["udp6"][IPv6]),
                  "udp6: inner IPv6 packet unchanged")

        # ARP reply for the VIP.
        check(len(arps) == 1, f"one ARP reply (got {len(arps)})")
        if len(arps) == 1:
            a = arps[0]
            check(a[ARP].op == 2, "arp: is a reply")
            check(a[ARP].psrc == VIP4 and a[ARP].hwsrc == port_mac,
                  f"arp: {a[ARP].psrc} is-at {a[ARP].hwsrc}")
            check(a[ARP].pdst == GW4 and a[ARP].hwdst == GW_MAC, "arp: addressed to the asker")
            check(a[Ether].dst == GW_MAC and a[Ether].src == port_mac, "arp: Ethernet addresses")

        # The non-VIP packet must not come out.
        def ipv4_dsts(p):
            i, dsts = 1, []
            while p.getlayer(IP, nb=i) is not None:
                dsts.append(p.getlayer(IP, nb=i).dst)
                i += 1
            return dsts
        leaked = [p for p in out if "192.0.2.99" in ipv4_dsts(p)]
        check(not leaked, "non-VIP packet dropped")
        stats = re.findall(r"^stats:.*$", text, re.M)
        check(bool(stats) and "not_for_us=1" in stats[-1],
              "final stats count the non-VIP packet as not_for_us=1")
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        for path in (shm_path,):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        if failures:
            print(f"work directory kept for inspection: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
