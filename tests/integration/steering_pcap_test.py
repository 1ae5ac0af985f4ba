#!/usr/bin/python3
"""Flow ownership through the real sluice-dataplane with 2 and 4 workers.

A net_pcap port with one RX and one TX pcap per worker stands in for a
multi-queue NIC: the test is the "NIC" and chooses each packet's RX queue; the
TX file a packet comes out of names the worker that transmitted it (worker w
owns TX queue w). The port cannot hash, so the dataplane runs with software
steering, the model being Toeplitz with the 0x6d5a key and a 128-entry RETA
(i % workers), which this test computes too.

  * dsr-ipip: a flow's SYN and data are delivered to different queues on
    purpose: both are forwarded, to the same backend, with no handoff.
  * nat: every SYN is delivered where RSS of its 5-tuple puts it: no handoff,
    and it leaves from that worker.
  * dnat: SYN and the backend's SYN-ACK are delivered to the same queue, the
    owner's for half the flows and another for the rest: the latter are handed
    to the owner of (client address, client port), both directions leave from
    it, the reply is translated back to the VIP.
  * every packet is counted once: rx_packets equals the packets sent,
    handoff_out equals handoff_in equals the dnat packets delivered elsewhere.

usage: steering_pcap_test.py SLUICE_DATAPLANE PUBLISH_TABLES
Exit 0 pass, 1 fail, 77 skip.
"""

import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

SKIP = 77

try:
    from scapy.all import IP, TCP, Ether, Raw, conf, rdpcap, wrpcap
    conf.verb = 0
except ImportError as e:  # pragma: no cover
    print(f"SKIP: python3-scapy is not installed ({e})")
    sys.exit(SKIP)

GW_MAC = "02:00:00:00:00:fe"
GW4 = "192.0.2.254"
VIP4 = "192.0.2.10"
OWN4 = "192.0.2.1/24"
BACKEND_NET4 = "10.0.0.1/24"
POOL4 = "10.0.0.200"
DSR_BACKENDS = {"10.0.0.11": "02:00:00:00:01:11", "10.0.0.12": "02:00:00:00:01:12"}
DNAT_BACKEND = ("10.0.0.21", "02:00:00:00:01:21")
NAT_BACKEND = ("10.0.0.31", "02:00:00:00:01:31")
KEY = bytes([0x6d, 0x5a] * 20)
RETA_SIZE = 128
FLOWS = 16

failures = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)
    return cond


def toeplitz(data):
    key = int.from_bytes(KEY, "big")
    klen = len(KEY) * 8
    h = 0
    for i in range(len(data) * 8):
        if data[i // 8] & (0x80 >> (i % 8)):
            h ^= (key >> (klen - 32 - i)) & 0xffffffff
    return h


def worker_of(h, workers):
    return (h % RETA_SIZE) % workers


def endpoint_owner(addr, port, workers):
    return worker_of(toeplitz(socket.inet_aton(addr) + struct.pack("!H", port)), workers)


def tuple_owner(src, dst, sport, dport, workers):
    data = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return worker_of(toeplitz(data), workers)


def client(i):
    return f"198.51.100.{i + 1}"


def frame(src, dst, sport, dport, flags, src_mac=GW_MAC, payload=b""):
    p = Ether(src=src_mac, dst="02:00:00:00:00:01") / IP(src=src, dst=dst, ttl=60) / \
        TCP(sport=sport, dport=dport, flags=flags, seq=1000, ack=1 if "A" in flags else 0)
    return p / Raw(payload) if payload else p


def eal_memory_args():
    try:
        with open("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages") as f:
            free = int(f.read())
        mounted = any(" hugetlbfs " in line for line in open("/proc/mounts"))
    except OSError:
        free, mounted = 0, False
    if os.geteuid() == 0 and mounted and free >= 192:
        return ["--in-memory"]
    return ["--no-huge", "-m", "768", "--no-shconf"]


def run_case(dataplane, publish, workers, work):
    tag = f"steer{workers}-{os.getpid()}"
    shm_path = f"/dev/shm/sluice-{tag}"
    queues_in = [[] for _ in range(workers)]
    expect_handoffs = 0
    sent = 0
    dsr, nat, dnat = [], [], []
    for i in range(FLOWS):
        c, port = client(i), 20000 + i
        q1, q2 = i % workers, (i + 1) % workers
        queues_in[q1].append(frame(c, VIP4, port, 80, "S"))
        queues_in[q2].append(frame(c, VIP4, port, 80, "PA", payload=b"hello"))
        dsr.append((c, port))
        sent += 2
    for i in range(FLOWS):
        c, port = client(i), 30000 + i
        q = tuple_owner(c, VIP4, port, 82, workers)
        queues_in[q].append(frame(c, VIP4, port, 82, "S"))
        nat.append((c, port, q))
        sent += 1
    for i in range(FLOWS):
        c, port = client(i), 40000 + i
        owner = endpoint_owner(c, port, workers)
        q = owner if i % 2 == 0 else (owner + 1) % workers
        queues_in[q].append(frame(c, VIP4, port, 81, "S"))
        queues_in[q].append(frame(DNAT_BACKEND[0], c, 8080, port, "SA",
                                  src_mac=DNAT_BACKEND[1]))
        dnat.append((c, port, owner))
        sent += 2
        expect_handoffs += 2 if q != owner else 0

    vdev = "net_pcap0"
    for w in range(workers):
        path = os.path.join(work, f"in{w}.pcap")
        wrpcap(path, queues_in[w])
        vdev += f",rx_pcap={path}"
    for w in range(workers):
        vdev += f",tx_pcap={os.path.join(work, f'out{w}.pcap')}"

    pub = subprocess.run(
        [publish, "--shm-path", shm_path,
         "--service", f"tcp:{VIP4}:80:dsr-ipip",
         "--backend", "10.0.0.11:80:1", "--backend", "10.0.0.12:80:1",
         "--service", f"tcp:{VIP4}:81:dnat", "--backend", f"{DNAT_BACKEND[0]}:8080:1",
         "--service", f"tcp:{VIP4}:82:nat", "--backend", f"{NAT_BACKEND[0]}:8080:1"],
        capture_output=True, text=True, timeout=30)
    print(pub.stdout + pub.stderr, end="")
    if not check(pub.returncode == 0, f"{workers} workers: tables published"):
        return
    # Main lcore plus one per worker, spread over the machine's CPUs.
    ncpu = os.cpu_count() or 1
    lcores = ",".join(f"{l}@{l % ncpu}" for l in range(workers + 1))
    cmd = [dataplane, "--lcores", lcores, "--no-pci", "--file-prefix", tag,
           "--log-level", "*:warning", *eal_memory_args(), "--vdev", vdev, "--",
           "--port", "0", "--shm-path", shm_path, "--instance", tag,
           "--addr", OWN4, "--addr", BACKEND_NET4, "--nat-pool", POOL4,
           "--gateway", GW4, "--flow-table-size", "16384", "--neigh", f"{GW4}={GW_MAC}"]
    for ip, mac in list(DSR_BACKENDS.items()) + [DNAT_BACKEND, NAT_BACKEND]:
        cmd += ["--neigh", f"{ip}={mac}"]
    print("running:", " ".join(cmd))
    log_path = os.path.join(work, f"dataplane{workers}.log")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and proc.poll() is None:
                if "forwarding" in open(log_path).read():
                    break
                time.sleep(0.1)
            outs = [os.path.join(work, f"out{w}.pcap") for w in range(workers)]
            last, stable = None, time.monotonic()
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and proc.poll() is None:
                sizes = [os.path.getsize(p) if os.path.exists(p) else 0 for p in outs]
                if sizes != last:
                    last, stable = sizes, time.monotonic()
                elif time.monotonic() - stable >= 1.5:
                    break
                time.sleep(0.1)
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            try:
                os.unlink(shm_path)
            except FileNotFoundError:
                pass
    text = open(log_path).read()
    print(text)
    check(rc == 0, f"{workers} workers: dataplane exited 0 (got {rc})")
    check("steering software" in text,
          f"{workers} workers: start-up line names software steering")

    out = {w: rdpcap(outs[w]) if os.path.exists(outs[w]) else [] for w in range(workers)}

    def where(pred):
        return [(w, p) for w in out for p in out[w] if IP in p and pred(p)]

    for c, port in dsr:
        pkts = where(lambda p, c=c, port=port: p[IP].proto == 4 and IP in p[IP].payload and
                     p[IP].payload.src == c and TCP in p and p[TCP].sport == port)
        check(len(pkts) == 2 and len({p[IP].dst for _, p in pkts}) == 1,
              f"{workers}w dsr {c}:{port}: SYN and data to one backend "
              f"({[p[IP].dst for _, p in pkts]})")
    # NAT rewrites the client's address and port: count SYNs per worker.
    nat_out = where(lambda p: TCP in p and p[IP].dst == NAT_BACKEND[0] and p[IP].src == POOL4)
    check(len(nat_out) == FLOWS, f"{workers}w nat: {len(nat_out)} of {FLOWS} SYNs forwarded")
    for w in range(workers):
        want = sum(1 for _, _, q in nat if q == w)
        got = sum(1 for ww, _ in nat_out if ww == w)
        check(got == want, f"{workers}w nat: worker {w} forwarded {got} SYNs, RSS put {want} there")
    for c, port, owner in dnat:
        fwd = where(lambda p, c=c, port=port: TCP in p and p[IP].src == c and
                    p[IP].dst == DNAT_BACKEND[0] and p[TCP].sport == port and
                    p[TCP].dport == 8080)
        rep = where(lambda p, c=c, port=port: TCP in p and p[IP].src == VIP4 and
                    p[IP].dst == c and p[TCP].sport == 81 and p[TCP].dport == port)
        check(len(fwd) == 1 and len(rep) == 1 and fwd[0][0] == owner and rep[0][0] == owner,
              f"{workers}w dnat {c}:{port}: both directions by owner worker {owner} "
              f"(forward by {[w for w, _ in fwd]}, reply by {[w for w, _ in rep]})")
    stats = re.findall(r"^stats:.*$", text, re.M)
    line = stats[-1] if stats else ""

    def counter(name):
        m = re.search(rf"\b{name}=(\d+)", line)
        return int(m.group(1)) if m else 0
    check(counter("rx_packets") == sent,
          f"{workers}w: rx_packets={counter('rx_packets')} counts each of {sent} packets once")
    check(counter("handoff_out") == expect_handoffs and counter("handoff_in") == expect_handoffs,
          f"{workers}w: handoff_out={counter('handoff_out')} handoff_in={counter('handoff_in')}, "
          f"expected {expect_handoffs} (dnat packets delivered away from their owner only)")


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    dataplane, publish = sys.argv[1], sys.argv[2]
    for b in (dataplane, publish):
        if not os.access(b, os.X_OK):
            print(f"SKIP: {b} is not built")
            return SKIP
    work = tempfile.mkdtemp(prefix="sluice-steer-")
    try:
        for workers in (2, 4):
            run_case(dataplane, publish, workers, work)
    finally:
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
