#!/usr/bin/python3
"""End-to-end test of sluice-controlplane and sluicectl with the REAL
sluice-dataplane (net_pcap port, idle), all on one private shared-memory
object and temp files:

  * --validate on bad files (malformed YAML, unknown field, duplicate service,
    invalid address): exit 1, exact FILE:LINE: PATH: message, nothing created;
  * a second control plane on the same instance is refused;
  * live changes through sluicectl are acknowledged by every dataplane worker;
  * bad CLI input (missing service, malformed/invalid apply file) changes
    nothing; apply --dry-run prints the diff and changes nothing;
  * /metrics serves the generation and worker counts;
  * kill -9 of the control plane: the dataplane keeps its tables; a restart
    restores the live config from the state file and continues the generation;
  * a restarted dataplane forwards with the current tables (a drained backend
    gets no new flow: 20 SYNs through net_pcap all go to the other backend).

usage: controlplane_test.py SLUICE_CONTROLPLANE SLUICECTL [SLUICE_DATAPLANE]
Exit 0 pass, 1 fail, 77 skip.
"""

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

SKIP = 77
failures = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)
    return cond


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


CONFIG = """instance: {inst}
limits:
  maglev_size: 65537
services:
  - name: web
    vip: 192.0.2.10
    port: 80
    proto: tcp
    mode: dsr-ipip
    backends:
      - {{address: 10.0.0.11, weight: 1}}
      - {{address: 10.0.0.12, weight: 1}}
  - name: dns
    vip: "2001:db8::10"
    port: 53
    proto: udp
    mode: dsr-ipip
    backends:
      - {{address: "fd00:10::11"}}
"""

BAD = {
    "malformed.yaml": ("services: [\n  - {name: x\n", "malformed.yaml:2:3: malformed YAML"),
    "unknown.yaml": ("services:\n  - name: a\n    vip: 192.0.2.1\n    port: 80\n    colour: red\n",
                     "unknown.yaml:5: service a: colour: unknown field"),
    "duplicate.yaml": ("services:\n  - {name: a, vip: 192.0.2.1, port: 80}\n"
                       "  - {name: a, vip: 192.0.2.2, port: 80}\n",
                       "duplicate.yaml:3: service a: name: duplicate service name 'a' "
                       "(also tcp 192.0.2.1:80 at line 2)"),
    "address.yaml": ("services:\n  - {name: a, vip: 192.0.2.300, port: 80}\n",
                     "address.yaml:2: service a: vip: must be an IPv4 or IPv6 address, "
                     "got '192.0.2.300'"),
    "weight.yaml": ("services:\n  - name: a\n    vip: 192.0.2.1\n    port: 80\n    backends:\n"
                    "      - {address: 10.0.0.1, weight: -1}\n",
                    "weight.yaml:6: service a: backend 10.0.0.1:80: weight: must be 0..65535, got -1"),
}


def shm_generation(path):
    with open(path, "rb") as f:
        f.seek(192)
        return struct.unpack("<Q", f.read(8))[0]


def scapy_ok():
    try:
        global IP, TCP, Ether, rdpcap, wrpcap
        from scapy.all import IP, TCP, Ether, conf, rdpcap, wrpcap  # noqa: F401
        conf.verb = 0
        return True
    except ImportError:
        print("note: python3-scapy missing; skipping the traffic check")
        return False


def run_traffic(dp_bin, shm, inst, work, procs):
    """Runs a fresh dataplane on 20 SYNs to the web VIP; returns its output."""
    in_pcap = os.path.join(work, "traffic.pcap")
    out_pcap = os.path.join(work, "traffic-out.pcap")
    gw_mac = "02:00:00:00:00:fe"
    wrpcap(in_pcap, [Ether(src=gw_mac, dst="ff:ff:ff:ff:ff:ff") /
                     IP(src="203.0.113.5", dst="192.0.2.10") /
                     TCP(sport=40000 + i, dport=80, flags="S") for i in range(20)])
    log_path = os.path.join(work, "dataplane2.log")
    dp = subprocess.Popen(
        [dp_bin, "-l", "0,1", "--no-pci", "--file-prefix", inst + "b", "--log-level",
         "*:warning", *eal_memory_args(), "--vdev",
         f"net_pcap0,rx_pcap={in_pcap},tx_pcap={out_pcap}", "--",
         "--port", "0", "--shm-path", shm, "--instance", inst,
         "--addr", "192.0.2.1/24", "--addr", "10.0.0.1/24", "--flow-table-size", "65536",
         "--gateway", "192.0.2.254", "--neigh", f"192.0.2.254={gw_mac}",
         "--neigh", "10.0.0.11=02:00:00:00:01:11", "--neigh", "10.0.0.13=02:00:00:00:01:13"],
        stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
    procs.append(dp)
    wait_for(lambda: "forwarding" in open(log_path).read() or dp.poll() is not None, 30)
    last, since = -1, time.monotonic()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        size = os.path.getsize(out_pcap) if os.path.exists(out_pcap) else 0
        if size != last:
            last, since = size, time.monotonic()
        elif time.monotonic() - since >= 1.5:
            break
        time.sleep(0.1)
    return rdpcap(out_pcap) if os.path.exists(out_pcap) else []


def eal_memory_args():
    return ["--no-huge", "-m", "512", "--no-shconf"]


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    cp_bin, ctl_bin = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    dp_bin = os.path.abspath(sys.argv[3]) if len(sys.argv) > 3 else None
    for b in (cp_bin, ctl_bin):
        if not os.access(b, os.X_OK):
            print(f"SKIP: {b} is not built")
            return SKIP
    if dp_bin and not os.access(dp_bin, os.X_OK):
        dp_bin = None

    inst = f"cpit-{os.getpid()}"
    shm = f"/dev/shm/sluice-{inst}"
    work = tempfile.mkdtemp(prefix="sluice-cp-")
    sock = os.path.join(work, "api.sock")
    state = os.path.join(work, "state.yaml")
    cfg = os.path.join(work, "sluice.yaml")
    with open(cfg, "w") as f:
        f.write(CONFIG.format(inst=inst))
    mport = free_port()
    procs = []

    def ctl(*args, timeout=20):
        r = subprocess.run([ctl_bin, "--socket", sock, *args], capture_output=True, text=True,
                           timeout=timeout)
        return r

    def status():
        r = ctl("--json", "status")
        return json.loads(r.stdout) if r.returncode == 0 else {}

    def start_cp(log_name):
        log = open(os.path.join(work, log_name), "w")
        p = subprocess.Popen([cp_bin, "--config", cfg, "--shm-path", shm, "--socket", sock,
                              "--state-file", state, "--metrics", f"127.0.0.1:{mport}"],
                             stdout=log, stderr=subprocess.STDOUT)
        procs.append(p)
        ok = wait_for(lambda: os.path.exists(sock) and ctl("status").returncode == 0, 15)
        return p, ok

    try:
        # 1. Validation: errors name file, line and field; nothing is created.
        for name, (text, expect) in BAD.items():
            path = os.path.join(work, name)
            with open(path, "w") as f:
                f.write(text)
            r = subprocess.run([cp_bin, "--config", path, "--validate"], cwd=work,
                               capture_output=True, text=True, timeout=10)
            rel = subprocess.run([cp_bin, "--config", name, "--validate"], cwd=work,
                                 capture_output=True, text=True, timeout=10)
            check(r.returncode == 1 and rel.stderr.startswith(expect),
                  f"--validate {name}: exit 1 and '{expect}' (got {rel.returncode}: "
                  f"{rel.stderr.strip()!r})")
        r = subprocess.run([cp_bin, "--config", cfg, "--validate"], capture_output=True,
                           text=True, timeout=10)
        check(r.returncode == 0, f"--validate accepts the good config ({r.stdout.strip()})")
        check(not os.path.exists(shm), "validation created no shared memory")

        # 2. Start; a second control plane is refused.
        cp, ok = start_cp("cp1.log")
        if not check(ok, "control plane serves its API"):
            print(open(os.path.join(work, "cp1.log")).read())
            return 1
        second = subprocess.run([cp_bin, "--config", cfg, "--shm-path", shm, "--socket",
                                 os.path.join(work, "other.sock"), "--state-file",
                                 os.path.join(work, "other.yaml"), "--metrics", "off"],
                                capture_output=True, text=True, timeout=10)
        check(second.returncode == 1 and "already runs this instance" in second.stderr,
              f"second control plane refused ({second.stderr.strip()!r})")
        check(ctl("status").returncode == 0, "first control plane unaffected")

        # 3. The real dataplane.
        workers = 0
        if dp_bin:
            in_pcap = os.path.join(work, "in.pcap")
            with open(in_pcap, "wb") as f:  # empty capture: the port idles
                f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
            dlog_path = os.path.join(work, "dataplane.log")
            dlog = open(dlog_path, "w")
            dp = subprocess.Popen(
                [dp_bin, "-l", "0,1", "--no-pci", "--file-prefix", inst, "--log-level",
                 "*:warning", *eal_memory_args(), "--vdev",
                 f"net_pcap0,rx_pcap={in_pcap},tx_pcap={os.path.join(work, 'out.pcap')}", "--",
                 "--port", "0", "--shm-path", shm, "--instance", inst,
                 "--addr", "192.0.2.1/24", "--addr", "10.0.0.1/24", "--flow-table-size", "65536"],
                stdout=dlog, stderr=subprocess.STDOUT)
            procs.append(dp)
            started = wait_for(lambda: "forwarding" in open(dlog_path).read()
                               or dp.poll() is not None, 30)
            if not check(started and dp.poll() is None, "dataplane started"):
                print(open(dlog_path).read())
                return 1
            check(wait_for(lambda: status().get("dataplane", {}).get("alive") is True, 10),
                  "status: dataplane alive")
            workers = len(status().get("workers", []))
            check(workers >= 1, f"status: {workers} live worker(s)")
        else:
            print("note: sluice-dataplane not built; no worker acknowledges")

        # 4. Live change, acknowledged by every worker.
        g0 = status()["generation"]
        t0 = time.monotonic()
        r = ctl("backend", "set-weight", "web", "10.0.0.11", "5")
        dt = (time.monotonic() - t0) * 1000
        check(r.returncode == 0 and "weight 1 -> 5" in r.stdout,
              f"set-weight applied ({r.stdout.strip()!r} {r.stderr.strip()!r}, {dt:.1f} ms)")
        st = status()
        check(st["generation"] == g0 + 1 and st["shm_generation"] == g0 + 1,
              f"generation {g0} -> {st['generation']}")
        acked = [w["acked_generation"] for w in st.get("workers", [])]
        check(all(a == g0 + 1 for a in acked) and len(acked) == workers,
              f"every worker acknowledged generation {g0 + 1} ({acked})")
        check(not st.get("lagging_workers"), "no lagging workers")
        r = ctl("backend", "drain", "web", "10.0.0.12")
        check(r.returncode == 0, "drain applied")
        r = ctl("list")
        check(r.returncode == 0 and "draining" in r.stdout and "10.0.0.11:80" in r.stdout,
              "list shows the change")

        # 5. Bad input changes nothing.
        before = ctl("save").stdout
        g1 = status()["generation"]
        r = ctl("backend", "set-weight", "nope", "10.0.0.11", "5")
        check(r.returncode == 1 and r.stderr == "sluicectl: service 'nope' does not exist\n",
              f"CLI against a missing service: one-line error ({r.stderr!r})")
        r = ctl("backend", "set-weight", "web", "10.0.0.11", "70000")
        check(r.returncode == 1 and "must be 0..65535, got 70000" in r.stderr,
              f"out-of-range weight refused ({r.stderr.strip()!r})")
        r = ctl("service", "add", "web2", "--vip", "192.0.2.10", "--port", "80")
        check(r.returncode == 1 and "duplicate service" in r.stderr,
              f"duplicate service refused ({r.stderr.strip()!r})")
        for name in ("malformed.yaml", "unknown.yaml", "address.yaml"):
            r = ctl("apply", "-f", os.path.join(work, name))
            check(r.returncode == 1 and r.stderr.count("\n") == 1,
                  f"apply {name} refused with one line ({r.stderr.strip()!r})")
        check(ctl("save").stdout == before and status()["generation"] == g1,
              "refused changes changed nothing")

        # 6. apply --dry-run, then apply.
        newcfg = os.path.join(work, "new.yaml")
        with open(newcfg, "w") as f:
            f.write(CONFIG.format(inst=inst).replace("10.0.0.12, weight: 1", "10.0.0.13, weight: 2"))
        r = ctl("apply", "-f", newcfg, "--dry-run")
        check(r.returncode == 0 and "+ backend web 10.0.0.13:80 weight 2 up" in r.stdout
              and "- backend web 10.0.0.12:80" in r.stdout,
              f"dry run prints the diff ({r.stdout.strip()!r})")
        check(ctl("save").stdout == before, "dry run changed nothing")
        r = ctl("apply", "-f", newcfg)
        check(r.returncode == 0 and status()["generation"] == g1 + 1, "apply made it live")

        # 7. save | restore round trip.
        saved = ctl("save").stdout
        r = ctl("service", "del", "dns")
        check(r.returncode == 0, "service del")
        restore = subprocess.run([ctl_bin, "--socket", sock, "restore"], input=saved,
                                 capture_output=True, text=True, timeout=20)
        check(restore.returncode == 0 and ctl("save").stdout == saved,
              "save | restore | save round-trips")

        # 8. Metrics.
        body = urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5).read()
        body = body.decode()
        gen = status()["generation"]
        check(f"sluice_table_generation {gen}\n" in body, "metrics: table generation")
        check(f"sluice_workers_live {workers}\n" in body, "metrics: live workers")
        check('sluice_backend_weight{service="web",backend="10.0.0.13:80"} 2' in body,
              "metrics: backend weight")

        # 9. Kill the control plane: tables stay; restart restores the live config.
        live = ctl("save").stdout
        gen = status()["generation"]
        cp.send_signal(signal.SIGKILL)
        cp.wait(timeout=10)
        time.sleep(0.3)
        check(shm_generation(shm) == gen, "tables stay after kill -9 of the control plane")
        if dp_bin:
            check(procs[1].poll() is None, "dataplane still running")
        os.unlink(sock)  # a killed daemon leaves its socket
        cp, ok = start_cp("cp2.log")
        check(ok, "control plane restarted")
        log2 = open(os.path.join(work, "cp2.log")).read()
        check("state file" in log2 and "wins over" in log2, "restart log says the state file wins")
        check(ctl("save").stdout == live, "restart: same live config")
        st = status()
        check(st["generation"] == gen + 1, f"generation continues ({gen} -> {st['generation']})")
        if dp_bin:
            check(all(w["acked_generation"] == gen + 1 for w in st["workers"]),
                  "workers acknowledged the restarted control plane's generation")

        # 10. Restart the dataplane: it forwards with the current tables (10.0.0.11
        #     drained, so every new flow goes to 10.0.0.13).
        if dp_bin and scapy_ok():
            r = ctl("backend", "drain", "web", "10.0.0.11")
            check(r.returncode == 0, "drain 10.0.0.11")
            dp = procs[1]
            dp.send_signal(signal.SIGTERM)
            check(dp.wait(timeout=15) == 0, "dataplane stopped")
            out = run_traffic(dp_bin, shm, inst, work, procs)
            outer = [p[IP].dst for p in out if IP in p and p[IP].proto == 4]
            check(len(outer) == 20 and set(outer) == {"10.0.0.13"},
                  f"restarted dataplane sends all 20 new flows to 10.0.0.13 ({set(outer)}, "
                  f"{len(outer)} packets)")
            acked = [w["acked_generation"] for w in status()["workers"]]
            check(acked and all(a == status()["generation"] for a in acked),
                  f"restarted dataplane's workers are on the current generation ({acked})")
            # The tracked flows, read from the running dataplane through the
            # control plane: bounded by --limit, named by service and backend.
            r = ctl("--json", "conns", "web", "--limit", "5")
            conns = json.loads(r.stdout) if r.returncode == 0 else {}
            flows = conns.get("flows", [])
            check(r.returncode == 0 and len(flows) == 5,
                  f"conns web --limit 5 lists 5 flows ({r.stdout.strip()[:200]!r} "
                  f"{r.stderr.strip()!r})")
            check(all(f["backend"] == "10.0.0.13:80" and f["service"] == "web" and
                      f["client"].startswith("203.0.113.5:") and f["state"] == "syn"
                      for f in flows), "conns rows name the client, service, backend and state")
            r = ctl("conns")
            rows = [l for l in r.stdout.splitlines() if l and not l.startswith("PRO ")]
            check(r.returncode == 0 and len(rows) == 20,
                  f"conns table lists all 20 flows ({r.stdout.strip()[-60:]!r})")

        # 11. Graceful stop.
        final = status()["generation"]
        cp.send_signal(signal.SIGTERM)
        check(cp.wait(timeout=10) == 0, "control plane exits 0 on SIGTERM")
        check(shm_generation(shm) == final, "tables stay after a graceful stop")
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for f in (shm, shm + ".lock"):
            if os.path.exists(f):
                os.unlink(f)
        shutil.rmtree(work, ignore_errors=True)
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
