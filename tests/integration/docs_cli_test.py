#!/usr/bin/env python3
"""What README.md and docs/*.md promise on the command line exists:

  * every `sluicectl COMMAND ...` names a command of `sluicectl --help`
    (or a command group: service, backend, instance), and every --option
    after it appears in `sluicectl COMMAND --help` (or is a global option);
  * every --option written after sluice-controlplane, sluice-dataplane (after
    the EAL's `--`), sluice-pktgen (idem), sluice-bench, sluice-decap or
    sluice-steer appears in that binary's --help.

  * every field in the first column of docs/configuration.md's tables is a
    field the decoder knows: a file with an unknown field at every level is
    run through `sluice-controlplane --validate`, whose "expected one of"
    lists are the known fields.

A self-check feeds one made-up command and one made-up option through the
same extractor, so the test cannot pass by finding nothing.

Usage: docs_cli_test.py SOURCE_ROOT SLUICECTL [NAME=BINARY ...]
No root; about 3 s.
"""

import glob
import os
import re
import subprocess
import sys

SKIP = 77
GLOBALS = {"--socket", "--instance", "--json", "--help", "--version"}
GROUPS = {"service", "backend", "instance"}
AFTER_EAL = {"sluice-dataplane", "sluice-pktgen"}


def help_text(argv):
    r = subprocess.run([*argv, "--help"], capture_output=True, text=True, timeout=20)
    return r.stdout + r.stderr


class Checker:
    def __init__(self, ctl, bins):
        self.ctl, self.bins, self.cache, self.seen = ctl, bins, {}, 0
        h = help_text([ctl])
        self.cmds = set()
        for line in h.split("commands:", 1)[1].splitlines():
            m = re.match(r"  (\S+(?: [a-z][a-z-]*)?)\s{2,}", line)
            if m:
                self.cmds.add(m.group(1))

    def help_of(self, argv):
        key = tuple(argv)
        if key not in self.cache:
            self.cache[key] = help_text(argv)
        return self.cache[key]

    def line(self, where, line):
        """Problems found on one line of a document."""
        bad = []
        for m in re.finditer(r"(?<![\w/-])sluicectl((?: [^`|;&)]*)?)", line):
            words = m.group(1).split()
            i = 0
            while i < len(words) and words[i] in ("--socket", "--instance", "--json"):
                i += 1 if words[i] == "--json" else 2
            words = words[i:]
            if not words or not re.fullmatch(r"[a-z][a-z-]*", words[0]):
                continue
            self.seen += 1
            two = " ".join(words[:2])
            cmd = two if two in self.cmds else words[0]
            if cmd not in self.cmds:
                if cmd not in GROUPS:
                    bad.append(f"{where}: sluicectl has no command '{cmd}'")
                continue
            h = self.help_of([self.ctl, *cmd.split()])
            for w in words[len(cmd.split()):]:
                o = re.match(r"[\[(`'\"]*(--[a-z][a-z0-9-]*)", w)
                if o and o.group(1) not in GLOBALS and o.group(1) not in h:
                    bad.append(f"{where}: 'sluicectl {cmd}' has no {o.group(1)}")
        for name, path in self.bins.items():
            for m in re.finditer(r"(?<![\w/-])" + re.escape(name) + r"((?: [^`|;&)]*)?)", line):
                rest = m.group(1) + " "
                if name in AFTER_EAL:
                    if " -- " not in rest:
                        continue
                    rest = rest.split(" -- ", 1)[1]
                self.seen += 1
                h = self.help_of([path])
                for o in re.finditer(r"(?<![\w-])(--[a-z][a-z0-9-]*)", rest):
                    if o.group(1) not in h and o.group(1) not in ("--help", "--version"):
                        bad.append(f"{where}: {name} has no {o.group(1)}")
        return bad


# An unknown field at every level of a config file.
PROBE = """instance: t
zz_top: 1
limits: {zz_limits: 1}
services:
  - name: a
    vip: 192.0.2.1
    port: 80
    zz_service: 1
    timeouts: {zz_timeouts: 1}
    health: {zz_health: 1}
    defence: {zz_defence: 1}
    backends:
      - {address: 10.0.0.1, zz_backend: 1}
"""


def config_fields_checked(root, cp_bin, failures):
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(PROBE)
    try:
        r = subprocess.run([cp_bin, "--config", f.name, "--validate"], capture_output=True,
                           text=True, timeout=20)
    finally:
        os.unlink(f.name)
    lists = re.findall(r"expected one of: ([^)]*)\)", r.stderr)
    if len(lists) != 7:
        failures.append(f"config probe: expected 7 'unknown field' lists, got {len(lists)} "
                        f"({r.stderr!r})")
        return 0
    known = {w.strip() for l in lists for w in l.split(",")}
    n = 0
    path = os.path.join(root, "docs", "configuration.md")
    for k, line in enumerate(open(path, encoding="utf-8"), 1):
        m = re.match(r"\| `([a-z_][a-z0-9_.\[\]]*)`", line)
        if not m:
            continue
        n += 1
        last = m.group(1).split(".")[-1].replace("[]", "")
        if last not in known:
            failures.append(f"docs/configuration.md:{k}: field '{m.group(1)}' is not one the "
                            "decoder knows")
    return n


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    root, ctl = sys.argv[1], os.path.abspath(sys.argv[2])
    bins = dict(a.split("=", 1) for a in sys.argv[3:])
    bins = {k: os.path.abspath(v) for k, v in bins.items() if os.access(v, os.X_OK)}
    if not os.access(ctl, os.X_OK):
        print(f"SKIP: {ctl} is not built")
        return SKIP
    c = Checker(ctl, bins)
    failures = []
    selfcheck = c.line("self", "`sluicectl frobnicate` and `sluicectl list --colour`")
    if len(selfcheck) != 2:
        failures.append(f"self-check: made-up command and option not both caught ({selfcheck})")
    if "sluice-controlplane" in bins and not c.line("self", "`sluice-controlplane --colour x`"):
        failures.append("self-check: made-up sluice-controlplane option not caught")
    for argv, want_rc, want in ((["service", "--help"], 0, "service add"),
                                (["frobnicate", "--help"], 2, "unknown command 'frobnicate'")):
        r = subprocess.run([ctl, *argv], capture_output=True, text=True, timeout=20)
        if r.returncode != want_rc or want not in r.stdout + r.stderr or \
                "backend add" in r.stdout:
            failures.append(f"sluicectl {' '.join(argv)}: exit {r.returncode}, {r.stdout!r} "
                            f"{r.stderr!r}")
    c.seen = 0
    docs = [os.path.join(root, "README.md")] + sorted(glob.glob(os.path.join(root, "docs", "*.md")))
    for path in docs:
        in_code = False
        for n, line in enumerate(open(path, encoding="utf-8"), 1):
            if line.lstrip().startswith("```"):
                in_code = not in_code
                continue
            # Prose mentions ("sluicectl (the CLI)") only count inside code.
            for text in [line] if in_code else re.findall(r"`([^`]*)`", line):
                failures += c.line(f"{os.path.relpath(path, root)}:{n}", text)
    print(f"{c.seen} command lines checked in {len(docs)} documents")
    if "sluice-controlplane" in bins:
        n = config_fields_checked(root, bins["sluice-controlplane"], failures)
        print(f"{n} documented config fields checked")
        if n < 40:
            failures.append(f"only {n} config fields found in docs/configuration.md")
    if c.seen < 50:
        failures.append(f"only {c.seen} command lines found: the extractor is broken")
    for f in failures:
        print("FAIL:", f)
    if not failures:
        print("every command and option the docs name exists")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
