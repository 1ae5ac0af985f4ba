#!/usr/bin/python3
"""sluice-pktgen reads profiles the way docs/benchmarking.md says (no root, no
EAL: --validate checks a profile and exits).

  * every profile in tests/pktgen/ validates (exit 0) and the printed rates
    follow the profile (a total rate_pps split by weight);
  * bad profiles exit 2 with one line on stderr naming the field;
  * bad options exit 2 naming the option.

usage: pktgen_profile_test.py SLUICE_PKTGEN SOURCE_ROOT   (exit 0 pass, 1 fail)
"""

import glob
import os
import subprocess
import sys
import tempfile

pktgen, root = sys.argv[1], sys.argv[2]
failures = []

GOOD = """
name: t
services:
  - name: web
    vip: 198.18.0.10
    port: 80
    mode: {mode}
    backends: [10.200.1.1:{bport}]
balancer:
  nat_pool: [10.200.0.2]
traffic:
  - type: {type}
    service: web
{extra}
"""

# (what, profile text, text expected on stderr)
BAD = [
    ("unknown field", GOOD.format(mode="nat", bport=8080, type="established", extra="    colour: red"),
     "traffic[0].colour: unknown field"),
    ("unknown type", GOOD.format(mode="nat", bport=8080, type="storm", extra=""), "traffic[0].type"),
    ("flows beyond 10M", GOOD.format(mode="nat", bport=8080, type="established", extra="    flows: 20000000"),
     "traffic[0].flows"),
    ("frame below 64", GOOD.format(mode="nat", bport=8080, type="established", extra="    frame: 40"),
     "traffic[0].frame"),
    ("reverse in a DSR mode", GOOD.format(mode="dsr-ipip", bport=80, type="established",
                                          extra="    direction: reverse"), "traffic[0].direction"),
    ("DSR backend port change", GOOD.format(mode="dsr-l2", bport=8080, type="established", extra=""),
     "services[0].backends[0]"),
    ("churn with rate_pps", GOOD.format(mode="nat", bport=8080, type="churn", extra="    rate_pps: 5"),
     "traffic[0].rate_pps"),
    ("unknown service", GOOD.format(mode="nat", bport=8080, type="established", extra="").replace(
        "service: web", "service: nope"), "traffic[0].service"),
    ("IPv6 VIP", GOOD.format(mode="nat", bport=8080, type="established", extra="").replace(
        "198.18.0.10", "2001:db8::10"), "services[0].vip"),
    ("nat without pool", GOOD.format(mode="nat", bport=8080, type="established", extra="").replace(
        "  nat_pool: [10.200.0.2]", "  nat_ports: 2000-3000"), "nat needs balancer.nat_pool"),
    ("not YAML", "services: [", "t.yaml"),
    ("request delay beyond 10 s", GOOD.format(mode="nat", bport=8080, type="churn",
                                              extra="    conns_per_s: 10\n    request_delay_ms: 20000"),
     "traffic[0].request_delay_ms"),
]


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)
    return cond


def run(*args):
    return subprocess.run([pktgen, *args], capture_output=True, text=True, timeout=30)


for path in sorted(glob.glob(os.path.join(root, "tests", "pktgen", "*.yaml"))):
    r = run("--validate", "--profile", path)
    check(r.returncode == 0 and r.stdout.startswith("profile "),
          f"{os.path.basename(path)} validates ({r.stderr.strip()})")
    if os.path.basename(path) == "mixed.yaml":
        # 1 Mpps split 3:6:1 over the weighted items; churn keeps its own rate.
        for line in ("established -> dns: 300000 pps", "established -> web: 600000 pps",
                     "churn -> web: 20000 conn/s", "udp-flood -> dns: 100000 pps"):
            check(line in r.stdout, f"mixed.yaml: '{line}'")

with tempfile.TemporaryDirectory() as d:
    for what, text, expect in BAD:
        p = os.path.join(d, "t.yaml")
        with open(p, "w") as f:
            f.write(text)
        r = run("--validate", "--profile", p)
        lines = r.stderr.strip().splitlines()
        check(r.returncode == 2 and len(lines) == 1 and expect in lines[0],
              f"{what}: exit 2 naming '{expect}' (got {r.returncode}: {r.stderr.strip()})")
    r = run("--validate")
    check(r.returncode == 2 and "--profile" in r.stderr, "missing --profile: exit 2 naming it")
    r = run("-l", "0", "--", "--profile", "x.yaml", "--scale", "-1")
    check(r.returncode == 2 and "--scale" in r.stderr, "bad --scale: exit 2 naming it")
    r = run("-l", "0", "--", "--profile", "x.yaml", "--client-port", "1", "--backend-port", "1")
    check(r.returncode == 2 and "--backend-port" in r.stderr, "same port twice: exit 2")
    r = run("-l", "0", "--", "--profile", "x.yaml", "--wait-peer-close", "-1")
    check(r.returncode == 2 and "--wait-peer-close" in r.stderr, "bad --wait-peer-close: exit 2 naming it")
    p = os.path.join(d, "delay.yaml")
    with open(p, "w") as f:
        f.write(GOOD.format(mode="nat", bport=8080, type="churn",
                            extra="    conns_per_s: 10\n    request_delay_ms: 100"))
    r = run("--validate", "--profile", p)
    check(r.returncode == 0, f"churn with request_delay_ms validates ({r.stderr.strip()})")
    r = run("--help")
    check(r.returncode == 0 and "--ndr" in r.stdout and "--loopback" in r.stdout and
          "--wait-peer-close" in r.stdout, "--help lists the options")

if failures:
    print(f"{len(failures)} failure(s)")
    sys.exit(1)
print("all checks passed")
