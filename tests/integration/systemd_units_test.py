#!/usr/bin/env python3
"""The systemd units of scripts/systemd, proved against the real binaries:

  * `systemd-analyze verify` accepts every unit (skipped when systemd-analyze
    is missing), with @BINDIR@ pointing at the built binaries;
  * each unit's ExecStartPre/ExecStart/ExecReload command lines, parsed from
    the unit files and expanded as systemd would (%i, Environment= defaults,
    $VAR word splitting, $$), run against a throwaway instance, under the
    unit's CapabilityBoundingSet and NoNewPrivileges (setpriv): the hugepage
    unit's script, the control plane's --validate then the daemon (its API
    answers on the default socket of the instance), the reload
    (`sluicectl apply`), the dataplane on a net_null port, which attaches to
    the control plane's shared memory and stops cleanly on the unit's
    KillSignal releasing its hugepages.

The config file path /etc/sluice/%i.yaml is redirected to a temporary
directory (nothing is written under /etc); the runtime paths the units imply
(/run/sluice, /var/lib/sluice, /dev/hugepages) are the real ones, with a
unique instance name, removed afterwards.

Usage: systemd_units_test.py UNIT_DIR SLUICE_CONTROLPLANE SLUICECTL SLUICE_DATAPLANE
Needs root and hugetlbfs with 128 free 2 MiB pages (skips with 77 otherwise);
about 10 s.
"""

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itest_util import check, failures, run  # noqa: E402

SKIP = 77
HUGE = "/sys/kernel/mm/hugepages/hugepages-2048kB"
UNITS = ["sluice-hugepages.service", "sluice-controlplane@.service", "sluice-dataplane@.service"]


def parse_unit(path):
    """{key: [values]} of the [Service] section (continuation lines joined)."""
    out, section, pending = {}, None, ""
    for raw in open(path):
        line = raw.rstrip("\n")
        if pending:
            line, pending = pending + line.lstrip(), ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        s = line.strip()
        if not s or s[0] in "#;":
            continue
        if s.startswith("["):
            section = s
            continue
        if section == "[Service]" and "=" in s:
            k, v = s.split("=", 1)
            out.setdefault(k.strip(), []).append(v.strip())
    return out


def unit_env(unit, overrides):
    env = {}
    for e in unit.get("Environment", []):
        for word in shlex.split(e):
            k, v = word.split("=", 1)
            env[k] = v
    env.update(overrides)
    return env


def expand(cmdline, inst, env, bins, etc):
    """argv of an Exec line as systemd builds it."""
    for name, path in bins.items():
        cmdline = cmdline.replace("@BINDIR@/" + name, path)
    cmdline = cmdline.lstrip("-@+!:")  # systemd's prefixes (none used today)
    cmdline = cmdline.replace("%i", inst).replace("/etc/sluice/", etc + "/")
    check("@" not in cmdline.split()[0], f"every binary of '{cmdline[:60]}' is known")
    argv = []
    for word in shlex.split(cmdline.replace("$$", "\0")):
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if m:  # $VAR alone: split into words; empty gives none
            argv += env.get(m.group(1), "").split()
            continue
        word = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda g: env.get(g.group(1), ""), word)
        argv.append(word.replace("\0", "$"))
    return argv


def confined(unit, argv):
    """argv run under the unit's capability bounding set and NoNewPrivileges."""
    caps = " ".join(unit.get("CapabilityBoundingSet", [])).split()
    pre = ["setpriv"]
    if caps:
        pre.append("--bounding-set=-all," + ",".join("+" + c.lower()[4:] for c in caps))
    if unit.get("NoNewPrivileges", ["no"])[-1] == "yes":
        pre.append("--no-new-privs")
    return pre + ["--"] + argv


def free_pages():
    return int(open(os.path.join(HUGE, "free_hugepages")).read())


def main():
    if len(sys.argv) < 5:
        print(__doc__)
        return 2
    unit_dir = os.path.abspath(sys.argv[1])
    cp_bin, ctl_bin, dp_bin = (os.path.abspath(a) for a in sys.argv[2:5])
    bins = {"sluice-controlplane": cp_bin, "sluicectl": ctl_bin, "sluice-dataplane": dp_bin}
    work = tempfile.mkdtemp(prefix="sluice-units-")
    try:
        # 1. systemd-analyze verify (no root needed).
        if shutil.which("systemd-analyze"):
            vdir = os.path.join(work, "verify")
            os.mkdir(vdir)
            for u in UNITS:
                text = open(os.path.join(unit_dir, u)).read()
                for name, path in bins.items():
                    text = text.replace("@BINDIR@/" + name, path)
                open(os.path.join(vdir, u), "w").write(text)
            names = [os.path.join(vdir, u.replace("@.", "@uv.")) for u in UNITS]
            r = run(["systemd-analyze", "verify", "--man=no", *names], timeout=60)
            check(r.returncode == 0 and not r.stderr.strip(),
                  f"systemd-analyze verify accepts every unit ({r.stderr.strip()!r})")
        else:
            print("note: systemd-analyze missing; units not verified")

        if os.geteuid() != 0:
            print("SKIP: running the units' command lines needs root")
            return SKIP if not failures else 1
        if not os.path.ismount("/dev/hugepages") or free_pages() < 128:
            print("SKIP: needs hugetlbfs on /dev/hugepages with 128 free 2 MiB pages")
            return SKIP if not failures else 1
        if not shutil.which("setpriv"):
            print("SKIP: setpriv (util-linux) missing")
            return SKIP if not failures else 1
        return run_units(unit_dir, bins, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_units(unit_dir, bins, work):
    inst = f"uniT{os.getpid()}"
    etc = os.path.join(work, "etc")
    os.mkdir(etc)
    made = [d for d in ("/run/sluice", "/var/lib/sluice") if not os.path.exists(d)]
    created = [f"/run/sluice/{inst}.sock", f"/var/lib/sluice/{inst}.state.yaml",
               f"/var/lib/sluice/{inst}.state.yaml.prev", f"/dev/hugepages/sluice-{inst}",
               f"/dev/hugepages/sluice-{inst}.lock", f"/run/sluice/{inst}.telemetry",
               f"/dev/hugepages/sluice-{inst}.telemetry"]
    with open(os.path.join(etc, f"{inst}.yaml"), "w") as f:
        f.write(f"instance: {inst}\nservices:\n"
                "  - name: web\n    vip: 192.0.2.10\n    port: 80\n    mode: dsr-ipip\n"
                "    backends: [{address: 10.0.0.11}]\n")
    units = {u: parse_unit(os.path.join(unit_dir, u)) for u in UNITS}
    procs = []
    try:
        # 2. sluice-hugepages.service: asks for what is already reserved, so
        # it must change nothing and report the count.
        hp = units["sluice-hugepages.service"]
        reserved = open(os.path.join(HUGE, "nr_hugepages")).read().strip()
        env = unit_env(hp, {"SLUICE_HUGEPAGES": reserved})
        for line in hp["ExecStart"]:
            r = run(confined(hp, expand(line, inst, env, bins, etc)), timeout=30)
            check(r.returncode == 0 and f"hugepages: {reserved} reserved" in r.stdout,
                  f"hugepages unit: ExecStart runs ({r.stdout.strip()!r} {r.stderr.strip()!r})")
        check(open(os.path.join(HUGE, "nr_hugepages")).read().strip() == reserved,
              "hugepages unit: never reduces the reservation")

        # 3. sluice-controlplane@.service: ExecStartPre then ExecStart.
        cpu = units["sluice-controlplane@.service"]
        env = unit_env(cpu, {"SLUICE_CP_ARGS": "--metrics off"})
        for d in ("/run/sluice", "/var/lib/sluice"):  # RuntimeDirectory, StateDirectory
            os.makedirs(d, exist_ok=True)
        for line in cpu.get("ExecStartPre", []):
            r = run(confined(cpu, expand(line, inst, env, bins, etc)), timeout=30)
            check(r.returncode == 0, f"control plane unit: ExecStartPre passes ({r.stderr!r})")
        cp_log = os.path.join(work, "cp.log")
        cp = subprocess.Popen(confined(cpu, expand(cpu["ExecStart"][0], inst, env, bins, etc)),
                              stdout=open(cp_log, "w"), stderr=subprocess.STDOUT)
        procs.append(cp)
        sock = f"/run/sluice/{inst}.sock"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and cp.poll() is None and not os.path.exists(sock):
            time.sleep(0.1)
        r = run([bins["sluicectl"], "--instance", inst, "list"], timeout=20)
        if not check(cp.poll() is None and r.returncode == 0 and "web" in r.stdout,
                     f"control plane unit: API on {sock} ({r.stdout.strip()!r} {r.stderr!r})"):
            print(open(cp_log).read())
            return 1
        for line in cpu.get("ExecReload", []):
            r = run(expand(line, inst, env, bins, etc), timeout=30)
            check(r.returncode == 0, f"control plane unit: ExecReload runs ({r.stdout.strip()!r} "
                                     f"{r.stderr.strip()!r})")

        # 4. sluice-dataplane@.service on a net_null port.
        dpu = units["sluice-dataplane@.service"]
        env = unit_env(dpu, {"SLUICE_EAL_ARGS": "-l 0,1 --no-pci --vdev net_null0 "
                                                "--log-level *:warning",
                             "SLUICE_DP_ARGS": "--port 0 --addr 192.0.2.1/24 "
                                               "--flow-table-size 65536"})
        free0 = free_pages()
        dp_log = os.path.join(work, "dp.log")
        dp = subprocess.Popen(confined(dpu, expand(dpu["ExecStart"][0], inst, env, bins, etc)),
                              stdout=open(dp_log, "w"), stderr=subprocess.STDOUT)
        procs.append(dp)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and dp.poll() is None and \
                "forwarding" not in open(dp_log).read():
            time.sleep(0.2)
        if not check(dp.poll() is None and "forwarding" in open(dp_log).read(),
                     "dataplane unit: ExecStart forwards under the unit's capabilities"):
            print(open(dp_log).read())
            return 1
        alive = False
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not alive:
            r = run([bins["sluicectl"], "--instance", inst, "--json", "status"], timeout=20)
            alive = '"alive": true' in r.stdout
            time.sleep(0.2)
        check(alive, "dataplane unit: the control plane sees the dataplane alive")
        sig = getattr(signal, dpu.get("KillSignal", ["SIGTERM"])[-1])
        dp.send_signal(sig)
        try:
            rc = dp.wait(int(dpu.get("TimeoutStopSec", ["30"])[-1]))
        except subprocess.TimeoutExpired:
            rc = None
        check(rc == 0, f"dataplane unit: stops cleanly on {sig.name} (exit {rc})")
        check(free_pages() >= free0, f"dataplane unit: hugepages released ({free0} free before, "
                                     f"{free_pages()} after)")
        cp.send_signal(signal.SIGTERM)
        try:
            rc = cp.wait(15)
        except subprocess.TimeoutExpired:
            rc = None
        check(rc == 0, f"control plane unit: stops on SIGTERM (exit {rc})")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for path in created:
            if os.path.lexists(path):
                os.unlink(path)
        for d in made:
            shutil.rmtree(d, ignore_errors=True)
        subprocess.run(["rm", "-rf", f"/var/run/dpdk/sluice-{inst}"])
    print("FAILED: " + "; ".join(failures) if failures else "all unit checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
