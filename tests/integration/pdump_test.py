#!/usr/bin/python3
"""Packet capture of a running sluice-dataplane with DPDK's dpdk-pdump.

The dataplane runs on hugepages (pdump is a secondary process: it needs the
primary's shared memory) with net_af_packet on a veth whose peer lives in a
namespace of its own. From there, UDP datagrams to the dataplane's address
make the kernel ARP for it; the dataplane answers. dpdk-pdump attaches with
`--pdump 'port=0,queue=*,rx-dev=RX.pcap,tx-dev=TX.pcap'` while this runs:
RX.pcap must hold the ARP requests and the datagrams, TX.pcap the ARP replies,
and the dataplane must keep running and stop cleanly afterwards.

usage: pdump_test.py SLUICE_DATAPLANE
Exit 0 pass, 1 fail, 77 skip (not root, no dpdk-pdump, too few free hugepages).
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from itest_util import check, failures, run

TAG = f"sdump{os.getpid() % 100000}"
NS = f"{TAG}-peer"
IF_DP, IF_PEER = f"{TAG}a", f"{TAG}b"
DP_ADDR, PEER_ADDR = "10.99.0.2", "10.99.0.1"

SENDER = f"""
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(30):
    try:
        s.sendto(b'pdump-test', ('{DP_ADDR}', 9))
    except OSError:
        pass
    time.sleep(0.1)
"""


def pcap_packets(path):
    """(count, frames) of a classic pcap file, frames as bytes."""
    frames = []
    try:
        data = open(path, "rb").read()
    except OSError:
        return 0, frames
    if len(data) < 24:
        return 0, frames
    little = data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1")
    order = "little" if little else "big"
    off = 24
    while off + 16 <= len(data):
        incl = int.from_bytes(data[off + 8:off + 12], order)
        frames.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return len(frames), frames


def is_arp(frame, op):
    return len(frame) >= 22 and frame[12:14] == b"\x08\x06" and frame[20:22] == op.to_bytes(2, "big")


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    dataplane = os.path.abspath(sys.argv[1])
    if os.geteuid() != 0:
        print("SKIP: needs root (hugepages, network namespace)")
        return 77
    pdump = shutil.which("dpdk-pdump")
    if not pdump:
        print("SKIP: dpdk-pdump is not installed (Debian package dpdk)")
        return 77
    try:
        free = int(open("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages").read())
    except OSError:
        free = 0
    if free < 256:
        print(f"SKIP: {free} free 2 MiB hugepages, need 256 (pdump needs a hugepage-backed primary)")
        return 77
    work = tempfile.mkdtemp(prefix="sluice-pdump-")
    rx_pcap, tx_pcap = f"{work}/rx.pcap", f"{work}/tx.pcap"
    shm = f"/dev/shm/sluice-{TAG}"
    dp = None
    try:
        run(["ip", "netns", "add", NS])
        run(["ip", "link", "add", IF_DP, "type", "veth", "peer", "name", IF_PEER])
        run(["ip", "link", "set", IF_PEER, "netns", NS])
        for cmd in (["ip", "link", "set", IF_DP, "up"],
                    ["ip", "-n", NS, "link", "set", IF_PEER, "up"],
                    ["ip", "-n", NS, "addr", "add", f"{PEER_ADDR}/24", "dev", IF_PEER],
                    ["ethtool", "-K", IF_DP, "tx", "off", "tso", "off", "gso", "off", "gro",
                     "off"]):
            run(cmd)
        log = open(f"{work}/dp.log", "w")
        dp = subprocess.Popen([dataplane, "-l", "0,1", "--no-pci", "--file-prefix", TAG,
                               "--log-level", "*:warning", "--vdev",
                               f"net_af_packet0,iface={IF_DP}", "--", "--port", "0",
                               "--shm-path", shm, "--addr", f"{DP_ADDR}/24",
                               "--flow-table-size", "65536"],
                              stdout=log, stderr=subprocess.STDOUT)
        for _ in range(100):
            if "forwarding" in open(f"{work}/dp.log").read() or dp.poll() is not None:
                break
            time.sleep(0.1)
        out = open(f"{work}/dp.log").read()
        if not check("forwarding" in out and "packet capture (dpdk-pdump) unavailable" not in out,
                     f"dataplane up with packet capture available: {out[-300:]}"):
            return 1
        cap = subprocess.Popen([pdump, "--file-prefix", TAG, "--log-level", "*:warning", "--",
                                "--pdump", f"port=0,queue=*,rx-dev={rx_pcap},tx-dev={tx_pcap}"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(2)  # attached before the traffic starts
        run(["ip", "netns", "exec", NS, "/usr/bin/python3", "-c", SENDER], timeout=30)
        time.sleep(0.5)
        cap.send_signal(signal.SIGINT)
        try:
            cap_out = cap.communicate(timeout=15)[0]
        except subprocess.TimeoutExpired:
            cap.kill()
            cap_out = cap.communicate()[0]
        n_rx, rx = pcap_packets(rx_pcap)
        n_tx, tx = pcap_packets(tx_pcap)
        print(f"dpdk-pdump: {cap_out.strip().splitlines()[-6:]}")
        udp = [f for f in rx if b"pdump-test" in f]
        check(len(udp) >= 10 and any(is_arp(f, 1) for f in rx),
              f"RX capture holds the ARP request and the datagrams ({n_rx} frames, {len(udp)} "
              f"datagrams)")
        check(any(is_arp(f, 2) for f in tx), f"TX capture holds the dataplane's ARP reply "
              f"({n_tx} frames)")
        check(dp.poll() is None, "the dataplane kept running during the capture")
        dp.send_signal(signal.SIGINT)
        check(dp.wait(timeout=15) == 0, "the dataplane stops cleanly after the capture")
        dp = None
    except subprocess.TimeoutExpired as e:
        check(False, f"timed out: {e.cmd}")
    finally:
        if dp is not None:
            dp.kill()
            dp.wait()
        run(["ip", "link", "del", IF_DP])
        run(["ip", "netns", "del", NS])
        run(["rm", "-rf", work, shm, shm + ".telemetry", shm + ".lock", f"/var/run/dpdk/{TAG}"])
        # Hugepage files a stopped primary may leave behind (they hold the pages).
        for f in os.listdir("/dev/hugepages") if os.path.isdir("/dev/hugepages") else []:
            if f.startswith(TAG):
                os.unlink(os.path.join("/dev/hugepages", f))
    print("FAILED:" if failures else "PASSED", *failures, sep="\n  ")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
