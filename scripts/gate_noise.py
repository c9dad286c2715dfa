"""False alarms and misses of each regression gate, over stored-vs-today comparisons of real
sessions (docs/ci.md, "Gates that hold under noise").

``collect`` runs SESSIONS pipelines as CI runs them (a fresh pytest process and engine each,
the real transformers backend on the embedded model, both modes, ``--mlperf-repeat``) and stores
each with ``--mlperf-save``. ``table`` then compares every stored session with every other
(S x (S-1) ordered pairs: stored, today) under each gate, twice:

- today as measured: nothing changed between the two builds, so a failure is a **false alarm**;
- today slowed down by ``--slowdown`` (a double of a slower build: every run's throughput
  divided by it, every latency multiplied): a pass is a **miss**. Outputs and ROUGE do not
  change in a slower build, so the outputs and exact-accuracy gates have no misses to count
  here (tests/test_outputs_gate.py checks that one changed token fails).

``confirm`` is the opt-in rerun: a failing comparison counts only when the next session
(today's rerun) fails against the same stored one too.

    python scripts/gate_noise.py collect --sessions 6 --store /tmp/gate-noise/store
    python scripts/gate_noise.py table --store /tmp/gate-noise/store --slowdown 1.1
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import subprocess
import sys
from pathlib import Path

from pytest_mlperf.core.record import BenchmarkRecord, Distribution, Figures
from pytest_mlperf.gate import storage
from pytest_mlperf.gate.compare import compare, match, parse_fail_bound
from pytest_mlperf.gate.outputs import compare_outputs

GATES = ("tokens_per_second:5%", "tokens_per_second:10%", "tokens_per_second:30%", "tokens_per_second:50%",
         "tokens_per_second:5%:mwu", "tokens_per_second:10%:mwu", "outputs", "rouge1:0")


def collect(args: argparse.Namespace) -> None:
    for i in range(1, args.sessions + 1):
        command = [sys.executable, "-m", "pytest", "benchmarks/test_llama3_1_8b.py", "--mlperf-scenario=Offline",
                   f"--mlperf-repeat={args.repeat}", f"--mlperf-save=noise{i}", f"--mlperf-storage={args.store}",
                   f"--mlperf-output={Path(args.store).parent / 'results'}", "-p", "no:cacheprovider", "-q",
                   *args.pytest_args]
        print("$", " ".join(command), flush=True)
        subprocess.run(command, check=False)


def _scale_dist(d: Distribution, factor: float) -> Distribution:
    return Distribution(**{k: None if v is None else v * factor for k, v in dataclasses.asdict(d).items()})


def _scale_figures(f: Figures, slowdown: float) -> Figures:
    return dataclasses.replace(
        f, tokens_per_second=None if f.tokens_per_second is None else f.tokens_per_second / slowdown,
        samples_per_second=None if f.samples_per_second is None else f.samples_per_second / slowdown,
        latency_ns=_scale_dist(f.latency_ns, slowdown), ttft_ns=_scale_dist(f.ttft_ns, slowdown),
        tpot_ns=_scale_dist(f.tpot_ns, slowdown))


def slowed(record: BenchmarkRecord, slowdown: float) -> BenchmarkRecord:
    """The record of a build ``slowdown`` times slower: every run's figures scaled."""
    repeats = tuple(dataclasses.replace(a, figures=_scale_figures(a.figures, slowdown)) for a in record.repeats)
    return dataclasses.replace(record, figures=_scale_figures(record.figures, slowdown), repeats=repeats)


def fails(gate: str, old_session: storage.StoredSession, new_session: storage.StoredSession,
          new: BenchmarkRecord) -> bool | None:
    """Does ``gate`` fail ``new`` against its run in ``old_session``; None when it does not apply."""
    old = match(old_session.records, new)
    if old is None:
        return None
    if gate == "outputs":
        if new.mode != "accuracy":
            return None
        kept, now = old_session.outputs.get(old.nodeid), new_session.outputs.get(new.nodeid)
        if kept is None or now is None:
            return None
        return not compare_outputs(kept, {int(k): v for k, v in now.items()}, "stored").gate.passed
    bound = parse_fail_bound(gate)
    if bound.figure.get(new) is None or bound.figure.get(old) is None:
        return None
    result = compare(old, new, [bound], "stored")
    if result.skipped is not None:
        return None
    return bool(result.regressions)


def table(args: argparse.Namespace) -> None:
    folders = [p for p in Path(args.store).iterdir() if p.is_dir()]
    sessions = [storage.load(path) for folder in folders for _, path in storage.sessions(folder)]
    print(f"{len(sessions)} sessions in {args.store}; slowdown for misses: x{args.slowdown:g}\n")
    print(f"| gate | false alarms (nothing changed) | misses (today x{args.slowdown:g} slower) "
          "| confirm: false alarms | confirm: misses |")
    print("|---|---|---|---|---|")
    for gate in GATES:
        counts = {k: [0, 0] for k in ("fa", "miss", "cfa", "cmiss")}
        for a, b in itertools.permutations(range(len(sessions)), 2):
            rerun = (b + 1) % len(sessions)
            if rerun == a:
                rerun = (rerun + 1) % len(sessions)
            for new in sessions[b].records:
                plain = fails(gate, sessions[a], sessions[b], new)
                if plain is None:
                    continue
                counts["fa"][0] += plain
                counts["fa"][1] += 1
                again = next((r for r in sessions[rerun].records if r.nodeid == new.nodeid), None)
                confirmed = plain and again is not None and bool(fails(gate, sessions[a], sessions[rerun], again))
                counts["cfa"][0] += confirmed
                counts["cfa"][1] += 1
                if gate in ("outputs", "rouge1:0"):
                    continue
                slow = fails(gate, sessions[a], sessions[b], slowed(new, args.slowdown))
                counts["miss"][0] += not slow
                counts["miss"][1] += 1
                slow_again = again is not None and fails(gate, sessions[a], sessions[rerun],
                                                         slowed(again, args.slowdown))
                counts["cmiss"][0] += not (slow and slow_again)
                counts["cmiss"][1] += 1

        cells = ["n/a" if not total else f"{n} of {total} ({100 * n / total:.0f} %)"
                 for n, total in (counts[k] for k in ("fa", "miss", "cfa", "cmiss"))]
        print(f"| `{gate}` | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect", help="run and store SESSIONS sessions")
    c.add_argument("--sessions", type=int, default=6)
    c.add_argument("--repeat", type=int, default=3)
    c.add_argument("--store", default="/tmp/gate-noise/store")
    c.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    t = sub.add_parser("table", help="false alarms and misses of each gate over the stored sessions")
    t.add_argument("--store", default="/tmp/gate-noise/store")
    t.add_argument("--slowdown", type=float, default=1.1)
    args = parser.parse_args()
    {"collect": collect, "table": table}[args.command](args)


if __name__ == "__main__":
    main()
