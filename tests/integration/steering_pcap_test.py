#!/usr/bin/python3
"""Flow ownership through the real sluice-dataplane with 2 and 4 workers.

A net_pcap port with one RX and one TX pcap per worker stands in for a
multi-queue NIC: the test is the "NIC" and chooses each packet's RX queue; the
TX file a packet comes out of names the worker that transmitted it (worker w
owns TX queue w). The port cannot hash, so the dataplane runs with software
steering, the model being Toeplitz with the 0x6d5a key and a 128-entry RETA
(i % workers), which this test computes too.

  * dsr-ipip, dsr-gue, dsr-l2: a flow's SYN and data are delivered to
    different queues on purpose: both are forwarded, encapsulated (IPIP, GUE)
    or with the backend's MAC (L2), to the same backend, with no handoff.
  * nat: every SYN is delivered where RSS of its 5-tuple puts it: no handoff,
    and it leaves from that worker.
  * dnat: SYN and the backend's SYN-ACK are delivered to the same queue, the
    owner's for half the flows and another for the rest: the latter are handed
    to the owner of (client address, client port), both directions leave from
    it, the reply is translated back to the VIP.
  * every packet is counted once: rx_packets equals the packets sent,
    handoff_out equals handoff_in equals the dnat packets delivered elsewhere.
  * the operator sees it: sluice-controlplane (which publishes the services)
    exports sluice_worker_handoff_ratio per worker and sluice_handoff_ratio
    with the exact shares, and sluice_port_steering_info names software
    steering and dnat handoff; `sluicectl status` shows each worker's
    handed-off share and the total; `sluicectl ports` names the steering; the
    dataplane's start-up line says why dnat falls back to software handoff
    (net_pcap has no rte_flow).

usage: steering_pcap_test.py SLUICE_DATAPLANE SLUICE_CONTROLPLANE SLUICECTL
Exit 0 pass, 1 fail, 77 skip.
"""

import json
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
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itest_util import check, failures, free_port, run, wait_for  # noqa: E402
import promlint  # noqa: E402

SKIP = 77

try:
    from scapy.all import IP, TCP, UDP, Ether, Raw, conf, rdpcap, wrpcap
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
DSR_BACKENDS = {"10.0.0.11": "02:00:00:00:01:11", "10.0.0.12": "02:00:00:00:01:12",
                "10.0.0.13": "02:00:00:00:01:13", "10.0.0.14": "02:00:00:00:01:14",
                "10.0.0.15": "02:00:00:00:01:15", "10.0.0.16": "02:00:00:00:01:16"}
# DSR services: mode -> VIP port (their backends above, two each).
DSR_PORTS = {"dsr-ipip": 80, "dsr-gue": 83, "dsr-l2": 84}
GUE_PORT = 6080
DNAT_BACKEND = ("10.0.0.21", "02:00:00:00:01:21")
NAT_BACKEND = ("10.0.0.31", "02:00:00:00:01:31")
KEY = bytes([0x6d, 0x5a] * 20)
RETA_SIZE = 128
FLOWS = 16

CONFIG = """instance: {inst}
services:
  - name: dsr
    vip: {vip}
    port: 80
    mode: dsr-ipip
    backends:
      - {{address: 10.0.0.11}}
      - {{address: 10.0.0.12}}
  - name: gue
    vip: {vip}
    port: 83
    mode: dsr-gue
    backends:
      - {{address: 10.0.0.13}}
      - {{address: 10.0.0.14}}
  - name: l2
    vip: {vip}
    port: 84
    mode: dsr-l2
    backends:
      - {{address: 10.0.0.15}}
      - {{address: 10.0.0.16}}
  - name: dnat
    vip: {vip}
    port: 81
    mode: dnat
    backends:
      - {{address: {dnat}, port: 8080}}
  - name: nat
    vip: {vip}
    port: 82
    mode: nat
    backends:
      - {{address: {nat}, port: 8080}}
"""


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


def metric(text, name, labels=""):
    m = re.search(rf"^{name}{re.escape(labels)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def run_case(dataplane, controlplane, sluicectl, workers, work):
    tag = f"steer{workers}-{os.getpid()}"
    shm_path = f"/dev/shm/sluice-{tag}"
    queues_in = [[] for _ in range(workers)]
    handoffs_from = [0] * workers  # per receiving worker
    expect_handoffs = 0
    sent = 0
    dsr, nat, dnat = [], [], []
    for mode, vport in DSR_PORTS.items():
        for i in range(FLOWS):
            c, port = client(i), 20000 + i
            q1, q2 = i % workers, (i + 1) % workers
            queues_in[q1].append(frame(c, VIP4, port, vport, "S"))
            queues_in[q2].append(frame(c, VIP4, port, vport, "PA", payload=b"hello"))
            dsr.append((mode, c, port))
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
        handoffs_from[q] += 2 if q != owner else 0

    # The control plane publishes the services before the dataplane starts
    # (net_pcap delivers its packets at once), then serves /metrics and the API.
    sock = os.path.join(work, f"api{workers}.sock")
    cfg = os.path.join(work, f"sluice{workers}.yaml")
    with open(cfg, "w") as f:
        f.write(CONFIG.format(inst=tag, vip=VIP4, dnat=DNAT_BACKEND[0], nat=NAT_BACKEND[0]))
    mport = free_port()
    cplog_path = os.path.join(work, f"cp{workers}.log")
    cp = subprocess.Popen([controlplane, "--config", cfg, "--shm-path", shm_path, "--socket", sock,
                           "--state-file", os.path.join(work, f"state{workers}.yaml"),
                           "--metrics", f"127.0.0.1:{mport}"],
                          stdout=open(cplog_path, "w"), stderr=subprocess.STDOUT)

    def ctl(*args):
        return run([sluicectl, "--socket", sock, *args], timeout=30)
    try:
        if not check(wait_for(lambda: os.path.exists(sock) and ctl("status").returncode == 0, 20),
                     f"{workers} workers: control plane publishes and serves its API"):
            print(open(cplog_path).read())
            return
        run_dataplane(dataplane, ctl, mport, workers, work, tag, shm_path, queues_in, vdev_of(
            work, queues_in, workers), sent, expect_handoffs, handoffs_from, dsr, nat, dnat)
    finally:
        cp.send_signal(signal.SIGTERM)
        try:
            cp.wait(timeout=20)
        except subprocess.TimeoutExpired:
            cp.kill()
            cp.wait()
        try:
            os.unlink(shm_path)
        except FileNotFoundError:
            pass


def vdev_of(work, queues_in, workers):
    vdev = "net_pcap0"
    for w in range(workers):
        path = os.path.join(work, f"in{w}.pcap")
        wrpcap(path, queues_in[w])
        vdev += f",rx_pcap={path}"
    for w in range(workers):
        vdev += f",tx_pcap={os.path.join(work, f'out{w}.pcap')}"
    return vdev


def run_dataplane(dataplane, ctl, mport, workers, work, tag, shm_path, queues_in, vdev, sent,
                  expect_handoffs, handoffs_from, dsr, nat, dnat):
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
            operator_view(ctl, mport, workers, queues_in, sent, expect_handoffs, handoffs_from)
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = open(log_path).read()
    print(text)
    check(rc == 0, f"{workers} workers: dataplane exited 0 (got {rc})")
    check("steering software" in text,
          f"{workers} workers: start-up line names software steering")
    check(re.search(r"dnat steering software handoff \(port 0: rte_flow_validate: .+\)", text),
          f"{workers} workers: start-up line says dnat falls back to software handoff and why")

    out = {w: rdpcap(outs[w]) if os.path.exists(outs[w]) else [] for w in range(workers)}

    def where(pred):
        return [(w, p) for w in out for p in out[w] if IP in p and pred(p)]

    def inner(p):
        """The client's packet inside a DSR frame, and the backend it went to."""
        if p[IP].proto == 4 and IP in p[IP].payload:
            return "dsr-ipip", p[IP].payload, p[IP].dst
        if UDP in p and p[UDP].dport == GUE_PORT:
            return "dsr-gue", IP(bytes(p[UDP].payload)), p[IP].dst
        if TCP in p and p[IP].dst == VIP4 and p[TCP].dport == DSR_PORTS["dsr-l2"]:
            ip = next((a for a, m in DSR_BACKENDS.items() if m == p[Ether].dst), None)
            return "dsr-l2", p[IP], ip
        return None, None, None

    dsr_out = [(w, *inner(p)) for w, p in where(lambda p: True)]
    for mode, c, port in dsr:
        pkts = [(w, b) for w, m, i, b in dsr_out
                if m == mode and i.src == c and TCP in i and i[TCP].sport == port and
                i[TCP].dport == DSR_PORTS[mode]]
        check(len(pkts) == 2 and len({b for _, b in pkts}) == 1 and pkts[0][1] is not None,
              f"{workers}w {mode} {c}:{port}: SYN and data to one backend "
              f"({[b for _, b in pkts]})")
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


def operator_view(ctl, mport, workers, queues_in, sent, expect_handoffs, handoffs_from):
    """/metrics, `sluicectl status` and `sluicectl ports` while the dataplane runs."""
    text = ""
    for _ in range(50):  # the control plane reads counters the workers publish
        text = urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5).read()
        text = text.decode()
        if metric(text, "sluice_handoff_ratio") is not None and \
                metric(text, "sluice_worker_rx_packets_total", '{worker="0"}') == \
                len(queues_in[0]) and "sluice_port_steering_info{" in text:
            break
        time.sleep(0.1)
    for w in range(workers):
        rx = len(queues_in[w])
        want = handoffs_from[w] / rx if rx else 0.0
        got = metric(text, "sluice_worker_handoff_ratio", f'{{worker="{w}"}}')
        check(got is not None and abs(got - want) < 1e-5,
              f"{workers}w: sluice_worker_handoff_ratio{{worker=\"{w}\"}} {got}, "
              f"expected {handoffs_from[w]}/{rx} = {want:.6f}")
    got = metric(text, "sluice_handoff_ratio")
    check(got is not None and abs(got - expect_handoffs / sent) < 1e-5,
          f"{workers}w: sluice_handoff_ratio {got}, expected {expect_handoffs}/{sent}")
    check(re.search(r'^sluice_port_steering_info\{port="0",[^}]*steering="software",'
                    r'dnat_steering="handoff"\} 1$', text, re.M),
          f"{workers}w: sluice_port_steering_info names software steering and dnat handoff "
          f"({[l for l in text.splitlines() if l.startswith('sluice_port_steering_info')]})")

    problems = promlint.lint(text)
    check(not problems, f"{workers}w: /metrics with the new families passes the promtool rules "
          f"({problems[:5]})")

    r = ctl("status")
    lines = [l for l in r.stdout.splitlines() if re.match(r"\s+worker \d+", l)]
    check(len(lines) == workers, f"{workers}w: status lists {len(lines)} workers")
    for w in range(workers):
        rx = len(queues_in[w])
        pct = 100 * handoffs_from[w] / rx if rx else 0.0
        want = f"rx {rx} handed off {handoffs_from[w]} ({pct:.1f} %)"
        line = next((l for l in lines if re.match(rf"\s+worker {w}\s", l)), "")
        check(want in line, f"{workers}w: status worker {w} shows {want!r} ({line.strip()!r})")
    want = (f"handoffs:      {expect_handoffs} of {sent} received packets "
            f"({100 * expect_handoffs / sent:.1f} %)")
    check(want in r.stdout, f"{workers}w: status shows {want!r}")
    j = ctl("--json", "status")
    try:
        st = json.loads(j.stdout)
    except ValueError:
        st = {}
    check(st.get("handoff", {}).get("handoff_out") == expect_handoffs and
          all("handoff_fraction" in w for w in st.get("workers", [])),
          f"{workers}w: status --json carries the handoff counts ({st.get('handoff')})")
    r = ctl("ports")
    check("steering software, dnat steering handoff" in r.stdout,
          f"{workers}w: sluicectl ports names the steering ({r.stdout.strip()[:160]!r})")


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    dataplane, controlplane, sluicectl = sys.argv[1], sys.argv[2], sys.argv[3]
    for b in (dataplane, controlplane, sluicectl):
        if not os.access(b, os.X_OK):
            print(f"SKIP: {b} is not built")
            return SKIP
    work = tempfile.mkdtemp(prefix="sluice-steer-")
    try:
        for workers in (2, 4):
            run_case(dataplane, controlplane, sluicectl, workers, work)
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
