"""``python -m pytest_mlperf.history``: the stored sessions (``--mlperf-save``) as a history.

    python -m pytest_mlperf.history list [--storage .mlperf]
    python -m pytest_mlperf.history compare OLD NEW [--storage .mlperf] [--machine ID]
    python -m pytest_mlperf.history trend --html history.html [--band 5] [--storage .mlperf]

``OLD``/``NEW`` are what ``--mlperf-compare`` takes: a number, a label or commit prefix, a file
name in the machine's folder, or a path (``last`` for the newest).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from pytest_mlperf.gate import storage
    from pytest_mlperf.report import history

    parser = argparse.ArgumentParser(prog="python -m pytest_mlperf.history", description=__doc__.split("\n\n")[0])
    parser.add_argument("--storage", type=Path, default=Path(".mlperf"), metavar="PATH",
                        help="folder of stored sessions (--mlperf-storage; default .mlperf)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the stored sessions of every machine")
    c = sub.add_parser("compare", help="two stored sessions side by side, per test and figure")
    c.add_argument("old", metavar="OLD")
    c.add_argument("new", metavar="NEW")
    c.add_argument("--machine", metavar="ID", help="machine folder (default: the only one, else this machine's)")
    t = sub.add_parser("trend", help="an HTML page: each figure over the stored sessions, per test")
    t.add_argument("--html", type=Path, required=True, metavar="PATH")
    t.add_argument("--band", type=float, default=5.0, metavar="PERCENT",
                   help="the gate's band drawn around the first session's value (default 5)")
    args = parser.parse_args(argv)

    if args.command == "list":
        print("\n".join(history.list_lines(args.storage)))
        return 0
    if args.command == "compare":
        machine = args.machine
        if machine is None:
            found = list(history.machines(args.storage))
            if len(found) == 1:
                machine = found[0]
            else:
                from pytest_mlperf.core.system import device

                machine = storage.machine_id(device())
        try:
            old, new = (storage.find(args.storage, machine, which) for which in (args.old, args.new))
        except storage.StorageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print("\n".join(history.compare_lines(old, new)))
        return 0
    args.html.parent.mkdir(parents=True, exist_ok=True)
    args.html.write_text(history.trend_page(args.storage, args.band), encoding="utf-8")
    print(f"history: {args.html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
