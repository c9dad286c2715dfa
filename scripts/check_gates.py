#!/usr/bin/env python3
"""Check that a comparing session's results carry the comparison (``.ci/run``): every gate in
``--mlperf-json`` with its fields, and the same gates in the step summary's comparison table.

    python scripts/check_gates.py results.json step-summary.md --expect outputs --expect tokens_per_second
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

FIELDS = ("name", "bound", "stored", "value", "ratio", "passed", "method", "test", "against")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", type=Path)
    parser.add_argument("summary", type=Path)
    parser.add_argument("--expect", action="append", default=[], metavar="GATE",
                        help="a gate name that must be there (repeatable)")
    args = parser.parse_args()
    gates = json.loads(args.json.read_text(encoding="utf-8")).get("gates", [])
    summary = args.summary.read_text(encoding="utf-8")
    problems = []
    if not gates:
        problems.append(f"{args.json}: no gates")
    for gate in gates:
        missing = [f for f in FIELDS if f not in gate]
        if missing:
            problems.append(f"{args.json}: gate {gate.get('name')} lacks {', '.join(missing)}")
        row = f"| {gate.get('name')} |"
        if row not in summary:
            problems.append(f"{args.summary}: no row for gate {gate.get('name')} of {gate.get('test')}")
    for name in args.expect:
        if not any(g.get("name") == name for g in gates):
            problems.append(f"{args.json}: no gate {name}")
    if "**Compared with**" not in summary:
        problems.append(f"{args.summary}: no comparison section")
    for gate in gates:
        print(f"{'ok  ' if gate.get('passed') else 'FAIL'} {gate.get('test')} {gate.get('name')} "
              f"{gate.get('bound')} stored {gate.get('stored')} now {gate.get('value')} ratio {gate.get('ratio')}")
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
