"""Checks a Prometheus text exposition (format 0.0.4) the way
`promtool check metrics` does: well-formed lines, HELP and TYPE once per
family and before its samples, samples of a family together, no duplicate
series, and promtool's lint rules (counters end in _total, no _count/_sum/
_bucket outside histograms and summaries, snake_case names, no abbreviated
units, no reserved ':'). Used by operator_test.py against a live /metrics;
promtool itself is run too when it is installed.

lint(text) -> list of problems (empty when the text passes).
families(text) -> {name: type} of the families it declares.
"""

import re

NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}
ABBREVIATIONS = ("_ms", "_us", "_ns", "_sec", "_secs", "_msec", "_usec", "_nsec", "_mins",
                 "_hrs", "_kb", "_mb", "_gb", "_pct")
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$')


def parse_labels(body):
    """'a="x",b="y"' -> list of (name, value), or None when malformed."""
    out, i = [], 0
    while i < len(body):
        m = re.match(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"', body[i:])
        if not m:
            return None
        name, i, value = m.group(1), i + m.end(), ""
        while i < len(body) and body[i] != '"':
            if body[i] == "\\":
                if i + 1 >= len(body) or body[i + 1] not in '\\"n':
                    return None
                value += body[i:i + 2]
                i += 2
            else:
                value += body[i]
                i += 1
        if i >= len(body):
            return None
        i += 1
        out.append((name, value))
        rest = body[i:].lstrip()
        if rest.startswith(","):
            i = len(body) - len(rest) + 1
        elif rest:
            return None
    return out


def family_of(sample, types):
    for suffix in ("_bucket", "_count", "_sum"):
        base = sample[:-len(suffix)] if sample.endswith(suffix) else None
        if base and types.get(base) in ("histogram", "summary"):
            return base
    return sample


def lint(text):
    problems, helps, types, seen, done = [], {}, {}, set(), set()
    current = None
    if text and not text.endswith("\n"):
        problems.append("the text does not end with a newline")
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not NAME.match(name):
                    problems.append(f"line {n}: bad metric name {name!r}")
                table = helps if parts[1] == "HELP" else types
                if name in table:
                    problems.append(f"line {n}: second {parts[1]} for {name}")
                if parts[1] == "HELP":
                    helps[name] = parts[3] if len(parts) > 3 else ""
                    if not helps[name].strip():
                        problems.append(f"line {n}: {name}: empty HELP")
                else:
                    t = parts[3].strip() if len(parts) > 3 else ""
                    if t not in TYPES:
                        problems.append(f"line {n}: {name}: unknown type {t!r}")
                    if name in done or name == current:
                        problems.append(f"line {n}: TYPE of {name} after its samples")
                    types[name] = t
            continue
        m = SAMPLE.match(line)
        if not m:
            problems.append(f"line {n}: malformed sample: {line!r}")
            continue
        name, labels_text, value = m.group(1), m.group(3), m.group(4)
        labels = parse_labels(labels_text) if labels_text else []
        if labels is None:
            problems.append(f"line {n}: malformed labels: {line!r}")
            continue
        names = [l[0] for l in labels]
        if len(set(names)) != len(names):
            problems.append(f"line {n}: repeated label name: {line!r}")
        try:
            float(value)
        except ValueError:
            problems.append(f"line {n}: bad value {value!r}")
        fam = family_of(name, types)
        if fam != current:
            if fam in done:
                problems.append(f"line {n}: samples of {fam} are not together")
            if current:
                done.add(current)
            current = fam
        key = (name, tuple(sorted(labels)))
        if key in seen:
            problems.append(f"line {n}: duplicate series {line.split(' ')[0]}")
        seen.add(key)
        if fam not in types:
            problems.append(f"line {n}: {fam} has no TYPE")
        if fam not in helps:
            problems.append(f"line {n}: {fam} has no HELP")
    for name, t in types.items():
        if t == "counter" and not name.endswith("_total"):
            problems.append(f"{name}: counter metrics should have \"_total\" suffix")
        if t not in ("histogram", "summary") and re.search(r"_(count|sum|bucket)$", name):
            problems.append(f"{name}: non-histogram and non-summary metrics should not have "
                            "\"_count\", \"_sum\" or \"_bucket\" suffix")
        if ":" in name:
            problems.append(f"{name}: metric names should not contain ':'")
        if re.search(r"[A-Z]", name):
            problems.append(f"{name}: metric names should be written in 'snake_case'")
        for a in ABBREVIATIONS:
            if (name + "_").find(a + "_") >= 0:
                problems.append(f"{name}: metric names should not contain abbreviated units")
    return problems


def families(text):
    out = {}
    for line in text.splitlines():
        parts = line.split(None, 3)
        if len(parts) >= 4 and parts[0] == "#" and parts[1] == "TYPE":
            out[parts[2]] = parts[3].strip()
    return out
