#!/usr/bin/env python3
"""Config errors through the real binaries: a file with several independent
mistakes lists every one of them in a single run, each naming its service by
name and its file line, never an internal index (services[N]):

  * sluice-controlplane --config FILE --validate
  * sluicectl apply -f FILE against a running control plane (no dataplane)
  * sluicectl restore -f FILE (bad lines all at once; the daemon's findings
    pointed back at the `service add` line)
  * sluicectl service add / backend add (named by the request's service)

Usage: config_errors_test.py SLUICE_CONTROLPLANE SLUICECTL
Needs no root; takes about 2 s.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itest_util import check, failures, run  # noqa: E402

SKIP = 77

# Six independent mistakes: two found while decoding (unknown field, bad
# weight), four only by the semantic checks (duplicate backend, duplicate
# name, duplicate VIP:port, a port rewrite dsr-l2 cannot do).
MULTI = """instance: {inst}
services:
  - name: web
    vip: 192.0.2.10
    port: 80
    colour: red
    backends:
      - {{address: 10.0.0.1, weight: 70000}}
  - name: api
    vip: 192.0.2.11
    port: 443
    mode: dsr-ipip
    backends:
      - {{address: 10.0.0.2}}
      - {{address: 10.0.0.2}}
  - name: web
    vip: 192.0.2.12
    port: 80
  - name: dns
    vip: 192.0.2.11
    port: 443
  - name: l2
    vip: 192.0.2.13
    port: 80
    mode: dsr-l2
    backends:
      - {{address: 192.0.2.50, port: 8080}}
"""

EXPECTED = [
    "multi.yaml:6: service web: colour: unknown field",
    "multi.yaml:8: service web: backend 10.0.0.1:80: weight: must be 0..65535, got 70000",
    "multi.yaml:15: service api: backend 10.0.0.2:443: duplicate backend 10.0.0.2:443 "
    "(listed first at line 14)",
    "multi.yaml:16: service web: name: duplicate service name 'web' (also tcp 192.0.2.10:80 "
    "at line 3)",
    "multi.yaml:19: service dns: duplicate service tcp 192.0.2.11:443 (also service 'api' "
    "at line 9)",
    "multi.yaml:22: service l2: service 192.0.2.13:80/tcp: backend 192.0.2.50:8080: dsr-l2 "
    "cannot rewrite the port",
]

RESTORE = """# two bad lines, two problems only the daemon sees
service add a --vip 192.0.2.5 --port 80
service add b --vip 192.0.2.5 --port 80
service add c --vip 192.0.2.6 --port 80 --mode dsr-l2
backend add c 10.0.0.1 --port 99
service add d --vip 192.0.2.7 --port 80 --colour red
frobnicate
"""


def lines_match(got, prefix, expected):
    """Every expected line appears, in order, as the start of one line of `got`."""
    lines = [l[len(prefix):] for l in got.splitlines() if l.startswith(prefix)]
    if len(lines) != len(expected):
        return False
    return all(l.startswith(e) for l, e in zip(lines, expected))


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    cp_bin, ctl_bin = (os.path.abspath(a) for a in sys.argv[1:3])
    for b in (cp_bin, ctl_bin):
        if not os.access(b, os.X_OK):
            print(f"SKIP: {b} is not built")
            return SKIP
    inst = f"cferr-{os.getpid()}"
    shm = f"/dev/shm/sluice-{inst}"
    work = tempfile.mkdtemp(prefix="sluice-cferr-")
    sock = os.path.join(work, "api.sock")
    multi = os.path.join(work, "multi.yaml")
    with open(multi, "w") as f:
        f.write(MULTI.format(inst=inst))
    good = os.path.join(work, "good.yaml")
    with open(good, "w") as f:
        f.write(f"instance: {inst}\nservices:\n  - {{name: web, vip: 192.0.2.10, port: 80}}\n")
    cp = None
    try:
        # 1. --validate: every mistake in one run, by service name and line.
        r = run([cp_bin, "--config", "multi.yaml", "--validate"], cwd=work, timeout=10)
        listed = "\n".join(l for l in r.stderr.splitlines() if l.startswith("multi.yaml:"))
        check(r.returncode == 1 and lines_match(listed, "", EXPECTED),
              f"--validate lists all 6 mistakes by name and line ({r.stderr!r})")
        check("services[" not in r.stderr, "--validate names no internal index")

        # 2. The same through the API: sluicectl apply.
        log = open(os.path.join(work, "cp.log"), "w")
        cp = subprocess.Popen([cp_bin, "--config", good, "--shm-path", shm, "--socket", sock,
                               "--state-file", os.path.join(work, "state.yaml"), "--metrics",
                               "off"], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not (
                os.path.exists(sock) and run([ctl_bin, "--socket", sock, "status"]).returncode == 0):
            time.sleep(0.1)
        if not check(cp.poll() is None and os.path.exists(sock), "control plane serves its API"):
            print(open(os.path.join(work, "cp.log")).read())
            return 1

        def ctl(*args):
            return run([ctl_bin, "--socket", sock, *args], timeout=20, cwd=work)

        before = ctl("save").stdout
        r = ctl("apply", "-f", "multi.yaml")
        check(r.returncode == 1 and lines_match(r.stderr, "sluicectl: ", EXPECTED),
              f"apply lists all 6 mistakes, one line each ({r.stderr!r})")

        # 3. restore: both bad lines at once, then the daemon's findings by name
        # and the line of their `service add`.
        with open(os.path.join(work, "saved.txt"), "w") as f:
            f.write(RESTORE)
        r = ctl("restore", "-f", "saved.txt")
        check(r.returncode == 1 and lines_match(r.stderr, "sluicectl: ", [
            "line 6: unrecognised option '--colour'",
            "line 7: expected 'limits ...', 'service add ...' or 'backend add ...': frobnicate"]),
            f"restore reports every bad line in one run ({r.stderr!r})")
        with open(os.path.join(work, "saved.txt"), "w") as f:
            f.write("\n".join(RESTORE.splitlines()[:5]) + "\n")
        r = ctl("restore", "-f", "saved.txt")
        check(r.returncode == 1 and lines_match(r.stderr, "sluicectl: ", [
            "service b (line 3): duplicate service tcp 192.0.2.5:80 (also service 'a')",
            "service c (line 4): service 192.0.2.6:80/tcp: backend 10.0.0.1:99: dsr-l2 cannot "
            "rewrite the port"]),
            f"restore: the daemon's findings point at their service add line ({r.stderr!r})")

        # 4. Single changes name the service they are about.
        r = ctl("service", "add", "x", "--vip", "192.0.2.20", "--port", "0", "--scheduler",
                "fastest")
        check(r.returncode == 1 and lines_match(r.stderr, "sluicectl: ", [
            "service x: port: must be 1..65535, got 0",
            "service x: scheduler: must be one of"]),
            f"service add: both mistakes, by service name ({r.stderr!r})")
        r = ctl("service", "add", "web2", "--vip", "192.0.2.10", "--port", "80")
        check(r.returncode == 1 and r.stderr ==
              "sluicectl: service web2: duplicate service tcp 192.0.2.10:80 (also service 'web')\n",
              f"service add: duplicate named ({r.stderr!r})")
        r = ctl("backend", "add", "web", "10.0.0.9", "--weight", "70000")
        check(r.returncode == 1 and
              r.stderr == "sluicectl: backend 10.0.0.9: weight: must be 0..65535, got 70000\n",
              f"backend add: named by its address ({r.stderr!r})")
        check(ctl("save").stdout == before, "refused changes changed nothing")
    finally:
        if cp and cp.poll() is None:
            cp.terminate()
            try:
                cp.wait(10)
            except subprocess.TimeoutExpired:
                cp.kill()
        for p in (shm, shm + ".lock"):
            if os.path.exists(p):
                os.unlink(p)
        shutil.rmtree(work, ignore_errors=True)
    print("FAILED: " + "; ".join(failures) if failures else "all config error checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
