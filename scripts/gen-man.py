#!/usr/bin/python3
"""Writes a man page generated from a binary's own --help and --version, so
the manual never disagrees with the program. For sluicectl, every command's
`--help` follows the main help.

usage: gen-man.py BINARY SECTION "ONE-LINE DESCRIPTION" OUTPUT
"""

import os
import re
import subprocess
import sys


def roff_text(text):
    out = []
    for line in text.rstrip("\n").splitlines():
        line = line.replace("\\", "\\\\").replace("-", "\\-")
        if line.startswith((".", "'")):
            line = "\\&" + line
        out.append(line)
    return "\n".join(out)


def help_of(binary, *args):
    r = subprocess.run([binary, *args, "--help"], capture_output=True, text=True, timeout=30)
    return r.stdout


def main():
    if len(sys.argv) != 5:
        print(__doc__)
        return 2
    binary, section, description, output = sys.argv[1:]
    name = os.path.basename(binary)
    version = subprocess.run([binary, "--version"], capture_output=True, text=True,
                             timeout=30).stdout.split()[-1]
    main_help = help_of(binary)
    page = [f'.TH {name.upper()} {section} "" "sluice {version}" "Sluice manual"',
            ".SH NAME", f"{name} \\- {roff_text(description)}",
            ".SH DESCRIPTION", ".nf", roff_text(main_help), ".fi"]
    if name == "sluicectl":
        page.append(".SH COMMANDS")
        in_cmds = False
        for line in main_help.splitlines():
            if line.startswith("commands:"):
                in_cmds = True
                continue
            m = re.match(r"^  (\S+(?: \S+)?)\s{2,}", line) if in_cmds else None
            if in_cmds and not line.strip():
                break
            if m:
                words = m.group(1).split()
                # "service add" vs "list [SERVICE]...": a second word starting
                # with a lowercase letter is a subcommand.
                if len(words) == 2 and not re.match(r"^[a-z-]+$", words[1]):
                    words = words[:1]
                page += [f".SS {' '.join(words)}", ".nf", roff_text(help_of(binary, *words)), ".fi"]
    page += [".SH SEE ALSO",
             "sluice\\-dataplane(8), sluice\\-controlplane(8), sluicectl(8); "
             "docs/operations.md in the sources (installed under share/doc/sluice)."]
    with open(output, "w") as f:
        f.write("\n".join(page) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
