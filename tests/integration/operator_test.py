#!/usr/bin/python3
"""What the operator on call relies on, through the real binaries:

  * every binary answers --version; sluicectl's per-command --help lists every
    option the command takes; `sluicectl service` alone lists its commands;
  * (root, hugetlbfs) the dataplane on real hugepages with its shared memory
    on hugetlbfs publishes its telemetry link (in /run/sluice: hugetlbfs holds
    no symlinks) and `sluicectl conns` lists every tracked flow (more than one
    page) with service/backend/client/state filters and --limit, in rows that
    fit 100 columns;
  * a backend failing its health check shows `down` in `sluicectl list` and
    sluice_backend_up 0 (configured_state up);
  * /metrics passes promtool's rules (promlint.py, and promtool when
    installed), has sluice_build_info and per-worker counters, and every query
    of docs/grafana/sluice-dashboard.json names a metric it exports;
  * log lines carry a timestamp and a level; an API change writes one audit
    line (uid, command, diff, generation); --log-format json writes JSON;
  * EAL failing for lack of hugepages prints hints; a clean stop (SIGINT)
    releases every hugepage: no file of the dataplane's prefix is left and the
    free count returns to where it was.

usage: operator_test.py DATAPLANE CONTROLPLANE SLUICECTL DASHBOARD [OTHER_BINARY...]
Exit 0 pass, 1 fail, 77 skip (the hugepage part needs root and hugetlbfs).
"""

import glob
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
from itest_util import check, failures, run  # noqa: E402
import promlint  # noqa: E402

SKIP = 77
HUGE = "/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages"
TS_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (info|warning|error) "
                     r"sluice-controlplane: ")
N_CLIENTS = 150  # more than one dataplane page (128 rows)


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


def free_hugepages():
    with open(HUGE) as f:
        return int(f.read())


def hugetlbfs_ok():
    if os.geteuid() != 0:
        return "needs root"
    if not os.path.exists(HUGE) or not os.path.ismount("/dev/hugepages"):
        return "no hugetlbfs at /dev/hugepages"
    if free_hugepages() < 128:
        return f"only {free_hugepages()} free 2 MiB hugepages"
    return None


def cli_checks(binaries, ctl):
    for b in binaries:
        r = run([b, "--version"], timeout=20)
        name = os.path.basename(b)
        check(r.returncode == 0 and re.match(rf"^{re.escape(name)} \d+\.\d+\.\d+\n$", r.stdout),
              f"{name} --version ({r.returncode}: {r.stdout.strip()!r} {r.stderr.strip()[:80]!r})")
    helps = {("backend", "drain"): ["--wait", "--timeout", "--port"],
             ("list",): ["--stats", "--rate", "--interval-ms", "SERVICE"],
             ("conns",): ["--backend", "--client", "--state", "--limit"],
             ("top",): ["--iterations", "--interval-ms"],
             ("apply",): ["--file", "--dry-run"],
             ("save",): ["limits"],
             ("service", "add"): ["--vip", "--health", "--timeout-fin"]}
    for words, want in helps.items():
        r = run([ctl, *words, "--help"])
        missing = [w for w in want if w not in r.stdout]
        check(r.returncode == 0 and not missing,
              f"sluicectl {' '.join(words)} --help lists {want} (missing {missing})")
    # Bash completion offers every option that `COMMAND --help` lists.
    completion = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts",
                              "sluicectl-completion.bash")
    for words in (["service", "add"], ["backend", "add"], ["backend", "drain"], ["list"],
                  ["conns"], ["top"], ["apply"], ["restore"]):
        opts = set(re.findall(r"^\s+(?:-\w, )?(--[a-z0-9-]+)", run([ctl, *words, "--help"]).stdout,
                              re.M))
        line = ["sluicectl", *words, "--"]
        script = (f"source {completion}; COMP_WORDS=({' '.join(line)}); "
                  f"COMP_CWORD={len(line) - 1}; _sluicectl; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
        got = set(run(["bash", "-c", script]).stdout.split())
        check(opts and opts <= got,
              f"bash completion of sluicectl {' '.join(words)} offers {sorted(opts - got) or 'all'}")
    script = (f"source {completion}; COMP_WORDS=(sluicectl backend dr); COMP_CWORD=2; "
              "_sluicectl; echo ${COMPREPLY[@]}")
    check(run(["bash", "-c", script]).stdout.split() == ["drain"], "bash completes subcommands")
    r = run([ctl, "service"])
    check(r.returncode == 2 and all(f"service {w}" in r.stdout for w in
                                    ("add", "del", "set", "list")),
          f"sluicectl service alone lists its subcommands ({r.stdout.strip()[:60]!r})")


def write_pcap(path, gw_mac):
    """SYNs from N_CLIENTS clients to the web VIP (two /24s), then one UDP
    datagram to the dns VIP."""
    def ip4(s):
        return bytes(int(x) for x in s.split("."))

    def csum(b):
        if len(b) % 2:
            b += b"\0"
        s = sum(struct.unpack(f"!{len(b) // 2}H", b))
        while s >> 16:
            s = (s & 0xffff) + (s >> 16)
        return ~s & 0xffff

    def frame(src, dst, proto, l4):
        iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 0, 0x4000, 64, proto, 0,
                          ip4(src), ip4(dst))
        iph = iph[:10] + struct.pack("!H", csum(iph)) + iph[12:]
        pseudo = ip4(src) + ip4(dst) + struct.pack("!BBH", 0, proto, len(l4))
        c = csum(pseudo + l4)
        l4 = l4[:16] + struct.pack("!H", c) + l4[18:] if proto == 6 else \
            l4[:6] + struct.pack("!H", c) + l4[8:]
        mac = bytes(int(x, 16) for x in gw_mac.split(":"))
        return b"\xff" * 6 + mac + b"\x08\x00" + iph + l4

    frames = []
    for i in range(N_CLIENTS):
        client = f"203.0.113.{i + 1}" if i < 100 else f"198.51.100.{i - 99}"
        tcp = struct.pack("!HHIIBBHHH", 40000 + i, 80, 1000 + i, 0, 5 << 4, 0x02, 65535, 0, 0)
        frames.append(frame(client, "192.0.2.10", 6, tcp))
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", 1, i, len(fr), len(fr)) + fr)


CONFIG = """instance: {inst}
services:
  - name: web
    vip: 192.0.2.10
    port: 80
    mode: dsr-ipip
    backends:
      - {{address: 10.0.0.11}}
      - {{address: 10.0.0.12}}
  - name: checked
    vip: 192.0.2.20
    port: 80
    health: {{check: tcp, interval_ms: 100, timeout_ms: 100, fall: 1, rise: 1}}
    backends:
      - {{address: 127.0.0.1, port: {dead}}}
"""


def main():
    if len(sys.argv) < 5:
        print(__doc__)
        return 2
    dp_bin, cp_bin, ctl_bin, dashboard = (os.path.abspath(a) for a in sys.argv[1:5])
    others = [os.path.abspath(a) for a in sys.argv[5:]]
    cli_checks([dp_bin, cp_bin, ctl_bin, *others], ctl_bin)

    why = hugetlbfs_ok()
    if why:
        print(f"SKIP: the hugepage part: {why}")
        return 1 if failures else SKIP

    inst = f"opit-{os.getpid()}"
    shm = f"/dev/hugepages/sluice-{inst}"
    prefix = inst
    work = tempfile.mkdtemp(prefix="sluice-op-")
    sock = os.path.join(work, "api.sock")
    cfg = os.path.join(work, "sluice.yaml")
    dead = free_port()  # nothing listens: the health check fails
    with open(cfg, "w") as f:
        f.write(CONFIG.format(inst=inst, dead=dead))
    mport = free_port()
    procs = []

    def ctl(*args, timeout=30):
        return run([ctl_bin, "--socket", sock, *args], timeout=timeout)

    free0 = free_hugepages()
    try:
        # EAL without enough hugepages: hints instead of a bare errno.
        r = run([dp_bin, "-l", "0,1", "--no-pci", "--file-prefix", prefix + "x", "-m", "1000000",
                 "--log-level", "*:error", "--", "--port", "0"], timeout=60)
        check(r.returncode != 0 and "EAL initialisation failed" in r.stderr and
              "hint:" in r.stderr and "hugepages" in r.stderr,
              f"EAL failure explains the hugepage shortfall ({r.stderr.strip()[-300:]!r})")

        cplog_path = os.path.join(work, "cp.log")
        cp = subprocess.Popen([cp_bin, "--config", cfg, "--shm-path", shm, "--socket", sock,
                               "--state-file", os.path.join(work, "state.yaml"),
                               "--metrics", f"127.0.0.1:{mport}"],
                              stdout=open(cplog_path, "w"), stderr=subprocess.STDOUT)
        procs.append(cp)
        if not check(wait_for(lambda: os.path.exists(sock) and ctl("status").returncode == 0, 20),
                     "control plane serves its API"):
            print(open(cplog_path).read())
            return 1

        in_pcap = os.path.join(work, "in.pcap")
        gw_mac = "02:00:00:00:00:fe"
        write_pcap(in_pcap, gw_mac)
        dlog_path = os.path.join(work, "dp.log")
        free_cp = free_hugepages()
        dp = subprocess.Popen(
            [dp_bin, "-l", "0,1", "--no-pci", "--file-prefix", prefix, "--log-level", "*:warning",
             "--vdev", f"net_pcap0,rx_pcap={in_pcap},tx_pcap={os.path.join(work, 'out.pcap')}",
             "--", "--port", "0", "--shm-path", shm, "--instance", inst,
             "--addr", "192.0.2.1/24", "--addr", "10.0.0.1/24", "--flow-table-size", "65536",
             "--gateway", "192.0.2.254", "--neigh", f"192.0.2.254={gw_mac}",
             "--neigh", "10.0.0.11=02:00:00:00:01:11", "--neigh", "10.0.0.12=02:00:00:00:01:12"],
            stdout=open(dlog_path, "w"), stderr=subprocess.STDOUT)
        procs.append(dp)
        started = wait_for(lambda: "forwarding" in open(dlog_path).read() or
                           dp.poll() is not None, 60)
        dlog = open(dlog_path).read()
        if not check(started and dp.poll() is None, "dataplane started on hugepages"):
            print(dlog)
            return 1
        used = free_cp - free_hugepages()
        print(f"note: one worker, --flow-table-size 65536: {used} x 2 MiB hugepages")
        check("cannot create" not in dlog, f"no telemetry-link warning ({dlog.strip()[-200:]!r})")
        link = f"/run/sluice/sluice-{inst}.telemetry"
        check(os.path.islink(link), f"telemetry link {link} (hugetlbfs holds no symlinks)")

        # conns: every flow, over several pages, with filters.
        def conns(*args):
            r = ctl("conns", *args)
            rows = [l for l in r.stdout.splitlines() if l and not l.startswith("PRO ")]
            return r, rows
        ok = wait_for(lambda: len(conns()[1]) == N_CLIENTS, 15)
        r, rows = conns()
        check(ok and r.returncode == 0,
              f"conns lists all {N_CLIENTS} flows (got {len(rows)}; {r.stderr.strip()!r})")
        check(r.stdout.startswith("PRO STATE") and
              max(len(l) for l in r.stdout.splitlines()) <= 100,
              "conns rows have a header and fit 100 columns")
        check(all(re.match(r"^tcp syn\s+\S+ 203\.0\.113\.\d+:\d+|^tcp syn\s+\S+ 198\.51\.100\.",
                           l) and "192.0.2.10:80" in l and " web" in l for l in rows),
              f"rows show proto, state, client, VIP and service ({rows[:1]})")
        _, small = conns("--page-size", "7")
        check(sorted(small) != [] and len(small) == N_CLIENTS,
              f"small API pages still list every flow ({len(small)})")
        _, lim = conns("--limit", "5")
        check(len(lim) == 5, f"--limit 5 shows 5 flows ({len(lim)})")
        _, pre = conns("--client", "198.51.100.0/24")
        check(len(pre) == N_CLIENTS - 100 and all("198.51.100." in l for l in pre),
              f"--client prefix filter ({len(pre)} flows)")
        _, b1 = conns("web", "--backend", "10.0.0.11")
        _, b2 = conns("--backend", "10.0.0.12:80")
        check(len(b1) + len(b2) == N_CLIENTS and len(b1) > 0 and len(b2) > 0 and
              all("10.0.0.11:80" in l for l in b1) and all("10.0.0.12:80" in l for l in b2),
              f"--backend filter splits the flows ({len(b1)} + {len(b2)})")
        _, est = conns("--state", "established")
        _, none = conns("checked")
        check(not est and not none, "--state and SERVICE filters exclude what does not match")
        r = ctl("--json", "conns", "--client", "203.0.113.7")
        j = json.loads(r.stdout) if r.returncode == 0 else {}
        check(j.get("count") == 1 and j["flows"][0]["client"] == "203.0.113.7:40006" and
              j["flows"][0]["backend"] in ("10.0.0.11:80", "10.0.0.12:80"),
              f"--json conns of one client ({r.stdout.strip()[:200]!r})")
        r = ctl("conns", "--state", "bogus")
        check(r.returncode == 1 and "state: must be" in r.stderr,
              f"a bad filter is refused ({r.stderr.strip()!r})")

        # Effective state of a backend failing its health check.
        def list_checked():
            return ctl("list", "checked").stdout
        check(wait_for(lambda: re.search(r"127\.0\.0\.1:\d+\s+\S+\s+1\s+down", list_checked()),
                       10), f"list shows the failing backend down ({list_checked()!r})")
        check("192.0.2.10" not in list_checked(), "list SERVICE shows only that service")

        metrics = urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5).read()
        metrics = metrics.decode()
        m = re.search(r'sluice_backend_up\{service="checked",backend="127\.0\.0\.1:\d+",'
                      r'state="down",configured_state="up"\} 0', metrics)
        check(m is not None, "sluice_backend_up is 0 for the backend failing its check")
        problems = promlint.lint(metrics)
        check(not problems, f"/metrics passes the promtool rules ({problems[:5]})")
        promtool = shutil.which("promtool")
        if promtool:
            r = subprocess.run([promtool, "check", "metrics"], input=metrics, text=True,
                               capture_output=True, timeout=30)
            check(r.returncode == 0, f"promtool check metrics ({r.stdout}{r.stderr})")
        else:
            print("note: promtool not installed; promlint.py applied its rules")
        check(re.search(r'^sluice_build_info\{version="\d+\.\d+\.\d+",component="controlplane"\} 1$',
                        metrics, re.M), "sluice_build_info")
        check(re.search(r'^sluice_worker_rx_packets_total\{worker="0"\} [1-9]', metrics, re.M),
              "per-worker counters carry a worker label")
        fams = promlint.families(metrics)
        with open(dashboard) as f:
            dash = json.load(f)
        exprs = []

        def walk(o):
            if isinstance(o, dict):
                if isinstance(o.get("expr"), str):
                    exprs.append(o["expr"])
                for v in o.values():
                    walk(v)
            elif isinstance(o, list):
                for v in o:
                    walk(v)
        walk(dash)
        names = {n for e in exprs for n in re.findall(r"\bsluice_[a-z0-9_]+", e)}
        unknown = sorted(n for n in names if n not in fams)
        check(len(exprs) >= 8 and not unknown,
              f"every metric of the {len(exprs)} dashboard queries is exported ({unknown})")

        # Audit line for a change through the API; timestamps and levels.
        r = ctl("backend", "set-weight", "web", "10.0.0.11", "3")
        gen = re.search(r"generation (\d+)", r.stdout)
        check(r.returncode == 0 and gen, f"set-weight applied ({r.stdout.strip()!r})")
        time.sleep(0.3)
        cplog = open(cplog_path).read().splitlines()
        audit = [l for l in cplog if "audit: backend.set-weight" in l]
        check(len(audit) == 1 and f"by uid {os.geteuid()} pid " in audit[0] and
              "weight 1 -> 3" in audit[0] and gen and f"generation {gen.group(1)}" in audit[0],
              f"one audit line with uid, diff and generation ({audit})")
        r = ctl("backend", "set-weight", "web", "10.9.9.9", "3")
        refused = [l for l in open(cplog_path).read().splitlines()
                   if "audit:" in l and "refused" in l]
        check(r.returncode == 1 and len(refused) == 1 and " warning " in refused[0],
              f"a refused change is audited as a warning ({refused})")
        check(cplog and all(TS_LINE.match(l) for l in cplog if l.startswith("20")) and
              sum(1 for l in cplog if TS_LINE.match(l)) >= 4,
              f"control-plane lines carry a UTC timestamp and a level ({cplog[:2]})")
        bad = os.path.join(work, "bad.yaml")
        with open(bad, "w") as f:
            f.write("services:\n  - {name: a, vip: 192.0.2.300, port: 80}\n")
        r = run([cp_bin, "--config", bad, "--validate", "--log-format", "json"])
        last = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
        try:
            j = json.loads(last)
        except ValueError:
            j = {}
        check(r.returncode == 1 and j.get("level") == "error" and "invalid" in j.get("msg", "")
              and "ts" in j, f"--log-format json writes JSON lines ({last!r})")
        r = run([cp_bin, "--config", cfg, "--log-format", "yaml"])
        check(r.returncode == 2 and "--log-format" in r.stderr,
              f"--log-format checks its value ({r.stderr.strip()!r})")

        # Clean stop: every hugepage of the dataplane back. (The shared memory
        # on hugetlbfs keeps its pages: it outlives the dataplane by design.)
        held = len(glob.glob(f"/dev/hugepages/{prefix}map_*"))
        free_before_stop = free_hugepages()
        dp.send_signal(signal.SIGINT)
        rc = dp.wait(timeout=30)
        freed = free_hugepages() - free_before_stop
        dlog = open(dlog_path).read()
        # (rte_eal_cleanup removes the files of pages it freed; the dataplane
        # removes the rest.)
        check(rc == 0 and re.search(r"released \d+ hugepage file\(s\)", dlog),
              f"dataplane stops cleanly and releases its files ({rc}; {dlog[-120:]!r})")
        left = glob.glob(f"/dev/hugepages/{prefix}map_*")
        check(held > 0 and not left, f"no hugepage file of prefix {prefix} left ({len(left)})")
        # Other processes on a shared machine may take pages meanwhile; in CI
        # (tests run one at a time) this is exact.
        check(freed >= held, f"free hugepages rose by the {held} pages it held (by {freed})")
        check(not os.path.exists(link), "telemetry link removed on stop")
        cp.send_signal(signal.SIGTERM)
        cp.wait(timeout=15)
        os.unlink(shm)
        print(f"note: free hugepages {free0} at the start, {free_hugepages()} at the end")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for path in glob.glob(f"/dev/hugepages/{prefix}*map_*") + [shm, shm + ".lock"]:
            if os.path.exists(path):
                os.unlink(path)
        for d in glob.glob(f"/var/run/dpdk/{prefix}*"):
            shutil.rmtree(d, ignore_errors=True)
        link = f"/run/sluice/sluice-{inst}.telemetry"
        if os.path.islink(link):
            os.unlink(link)
        shutil.rmtree(work, ignore_errors=True)
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
