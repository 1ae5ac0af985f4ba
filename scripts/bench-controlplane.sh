#!/usr/bin/env bash
# Control-plane benchmarks (docs/performance.md, "Control plane"):
#   1. Maglev rebuild time at M = 65537 and 655373 with 10/100/1000 backends
#      (sluice-cp-bench: one service, the table builder into a private slot);
#   2. change-to-acknowledged: `sluicectl backend set-weight` against a running
#      sluice-controlplane and the real sluice-dataplane (net_pcap, idle, one
#      worker), N changes. Reported: the daemon's publish latency (build +
#      publish + every worker acknowledged, from `status`) and the wall time of
#      the whole sluicectl command (process start, socket, answer).
# usage: scripts/bench-controlplane.sh [BUILD_DIR] [CHANGES]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
changes=${2:-50}
cp_bin=$build/controlplane/sluice-controlplane
ctl_bin=$build/controlplane/sluicectl
dp_bin=$build/dataplane/sluice-dataplane
for b in "$build/controlplane/sluice-cp-bench" "$cp_bin" "$ctl_bin"; do
  [[ -x $b ]] || { echo "bench-controlplane.sh: $b not built" >&2; exit 1; }
done

echo "== Maglev rebuild (one service) =="
"$build/controlplane/sluice-cp-bench" --runs 21

echo
echo "== set-weight -> all workers acknowledged ($changes changes) =="
exec /usr/bin/python3 - "$cp_bin" "$ctl_bin" "$dp_bin" "$changes" <<'PY'
import json, os, shutil, signal, statistics, struct, subprocess, sys, tempfile, time
cp_bin, ctl_bin, dp_bin, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
inst = f"cpbench-{os.getpid()}"
shm = f"/dev/shm/sluice-{inst}"
work = tempfile.mkdtemp(prefix="sluice-cpbench-")
sock = os.path.join(work, "api.sock")
cfg = os.path.join(work, "c.yaml")
backends = "".join(f"      - {{address: 10.0.{i // 250}.{i % 250 + 1}}}\n" for i in range(100))
open(cfg, "w").write(f"instance: {inst}\nservices:\n  - name: web\n    vip: 192.0.2.10\n"
                     f"    port: 80\n    mode: dsr-ipip\n    backends:\n{backends}")
procs = []
def ctl(*a):
    return subprocess.run([ctl_bin, "--socket", sock, *a], capture_output=True, text=True, timeout=30)
try:
    cp = subprocess.Popen([cp_bin, "--config", cfg, "--shm-path", shm, "--socket", sock,
                           "--state-file", os.path.join(work, "state.yaml"), "--metrics", "off"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(cp)
    for _ in range(200):
        if os.path.exists(sock) and ctl("status").returncode == 0:
            break
        time.sleep(0.05)
    workers = 0
    if os.access(dp_bin, os.X_OK):
        pcap = os.path.join(work, "in.pcap")
        open(pcap, "wb").write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
        log = os.path.join(work, "dp.log")
        dp = subprocess.Popen([dp_bin, "-l", "0,1", "--no-pci", "--file-prefix", inst,
                               "--log-level", "*:warning", "--no-huge", "-m", "512", "--no-shconf",
                               "--vdev", f"net_pcap0,rx_pcap={pcap},tx_pcap={work}/out.pcap", "--",
                               "--port", "0", "--shm-path", shm, "--addr", "192.0.2.1/24",
                               "--addr", "10.0.0.254/16", "--flow-table-size", "65536"],
                              stdout=open(log, "w"), stderr=subprocess.STDOUT)
        procs.append(dp)
        for _ in range(300):
            st = json.loads(ctl("--json", "status").stdout)
            workers = len(st.get("workers", []))
            if workers:
                break
            time.sleep(0.1)
    print(f"dataplane workers acknowledging: {workers}")
    pub, wall = [], []
    for i in range(n):
        t0 = time.monotonic()
        r = ctl("backend", "set-weight", "web", "10.0.0.1", str(1 + i % 5 + (i % 2)))
        wall.append((time.monotonic() - t0) * 1e3)
        if r.returncode != 0:
            print("set-weight failed:", r.stderr.strip()); sys.exit(1)
        st = json.loads(ctl("--json", "status").stdout)
        assert all(w["in_sync"] for w in st["workers"]), "a worker did not acknowledge"
        pub.append(st["publish"]["last_ms"])
    def show(name, v):
        v = sorted(v)
        print(f"{name:<44} median {statistics.median(v):7.3f} ms  min {v[0]:7.3f}  "
              f"p90 {v[int(len(v) * 0.9)]:7.3f}  max {v[-1]:7.3f}")
    show("publish + all workers acked (daemon)", pub)
    show("sluicectl set-weight wall time (end to end)", wall)
finally:
    for p in reversed(procs):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
    for f in (shm, shm + ".lock"):
        if os.path.exists(f):
            os.unlink(f)
    shutil.rmtree(work, ignore_errors=True)
PY
