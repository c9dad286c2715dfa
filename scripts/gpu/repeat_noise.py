"""How many repeats keep a 5 % regression gate from flapping?

A gate compares the median of ``--mlperf-repeat N`` runs today with the median of N runs
stored by an earlier pipeline, on the same machine, with nothing changed in between. It flaps
when today's median falls more than 5 % below the stored one anyway. This script makes the runs
and counts: SESSIONS fresh processes (a fresh engine each, as pipelines are), RUNS loadgen
runs in each through the plugin's runner and VllmBackend (Offline by default, prefix caching
off so every run does the same work), then for every N: over every ordered pair of sessions
(stored, today), how often the median of today's first N runs is below (1 - GATE %) of the
stored session's first N.

H200:          PYTHONPATH=/tmp/site python3 scripts/gpu/repeat_noise.py | tee noise.jsonl
CPU dry run:   TINY=1 SESSIONS=2 RUNS=3 N=32 .venv/bin/python scripts/gpu/repeat_noise.py
The plugin's own stored sessions (``--mlperf-repeat=5 --mlperf-save``, e.g. a CI runner's):
               python3 scripts/gpu/repeat_noise.py --storage .mlperf [--figure tokens_per_second]

Env: SESSIONS (3), FIRST_SESSION (0: number sessions from here, to split them over several
commands and analyse the concatenated output with ``--runs``), RUNS (5 per session), N
(prompts per run, 1000; fresh random prompts of probe_offline.py's lengths, other ones in
each session), SCENARIO (Offline, or Server at SERVER_QPS, 40, with DUR_MS 60000), GATE (5,
percent), TP (1), ENGINE_ARGS (JSON over the defaults), TINY=1 (a small model).
Output: RESULT lines (one per run, then one ``flap`` line per N) and a table on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import emit, engine_args_from_env, model_dir, offline_prompts  # noqa: E402

#: figure -> +1 when higher is better, -1 when lower is
DIRECTION = {"tokens_per_second": +1, "samples_per_second": +1, "ttft_p99_ms": -1, "tpot_p99_ms": -1}


# -- the analysis (also for stored sessions) ------------------------------------------------------

def flaps(sessions: Sequence[Sequence[float]], n: int, gate_pct: float, better: int = +1) -> dict:
    """Over ordered pairs of distinct sessions (stored, today): how often the median of today's
    first ``n`` runs regresses past the gate against the stored one's, and the worst ratio."""
    usable = [s for s in sessions if len(s) >= n]
    pairs = flapped = 0
    worst = 1.0
    for i, stored in enumerate(usable):
        for j, today in enumerate(usable):
            if i == j:
                continue
            old, new = statistics.median(stored[:n]), statistics.median(today[:n])
            ratio = new / old if better > 0 else old / new
            worst = min(worst, ratio)
            pairs += 1
            flapped += ratio < 1 - gate_pct / 100
    return {"n": n, "sessions": len(usable), "pairs": pairs, "flaps": flapped,
            "rate": round(flapped / pairs, 4) if pairs else None, "worst_ratio": round(worst, 4)}


def flaps_within(sessions: Sequence[Sequence[float]], n: int, gate_pct: float, better: int = +1,
                 draws: int = 4000, seed: int = 0) -> float | None:
    """The same question when nothing but run-to-run noise differs: stored and today's N runs
    both drawn (with replacement) from one session's runs, averaged over sessions. What
    repeats can fix; the rest of the across-session rate is the machine's drift."""
    import random

    rng = random.Random(seed)
    usable = [s for s in sessions if len(s) >= 2]
    if not usable:
        return None
    flapped = 0
    for _ in range(draws):
        runs = usable[rng.randrange(len(usable))]
        old = statistics.median(rng.choices(runs, k=n))
        new = statistics.median(rng.choices(runs, k=n))
        ratio = new / old if better > 0 else old / new
        flapped += ratio < 1 - gate_pct / 100
    return round(flapped / draws, 4)


def describe(sessions: Sequence[Sequence[float]]) -> dict:
    within = [statistics.stdev(s) / statistics.mean(s) for s in sessions if len(s) > 1]
    medians = [statistics.median(s) for s in sessions]
    return {
        "runs": sum(map(len, sessions)), "sessions": len(sessions),
        "within_session_cv_pct": round(100 * statistics.mean(within), 2) if within else None,
        "between_session_medians_spread_pct": round(100 * (max(medians) - min(medians)) / statistics.median(medians), 2),
        "first_run_vs_rest_pct": _first_run_effect(sessions),
    }


def _first_run_effect(sessions: Sequence[Sequence[float]]) -> float | None:
    diffs = [100 * (s[0] / statistics.median(s[1:]) - 1) for s in sessions if len(s) > 2]
    return round(statistics.mean(diffs), 2) if diffs else None


def report(sessions: Sequence[Sequence[float]], figure: str, gate_pct: float, label: str = "") -> None:
    better = DIRECTION.get(figure, +1)
    summary = describe(sessions)
    emit(what="noise", figure=figure, label=label, **summary)
    print(f"\n{label or figure}: {summary['runs']} runs in {summary['sessions']} sessions; within a session "
          f"CV {summary['within_session_cv_pct']} %, session medians spread "
          f"{summary['between_session_medians_spread_pct']} %, first run vs the rest "
          f"{summary['first_run_vs_rest_pct']} %", file=sys.stderr)
    print(f"{'N':>3} {'pairs':>6} {'flaps':>6} {'rate':>7} {'worst today/stored':>19} {'same-session rate':>18}",
          file=sys.stderr)
    for n in range(1, max(map(len, sessions)) + 1):
        row = flaps(sessions, n, gate_pct, better)
        within = flaps_within(sessions, n, gate_pct, better)
        if not row["pairs"]:
            continue
        emit(what="flap", figure=figure, label=label, gate_pct=gate_pct, same_session_rate=within, **row)
        print(f"{n:>3} {row['pairs']:>6} {row['flaps']:>6} {row['rate']:>7.1%} {row['worst_ratio']:>19.3f} "
              f"{within if within is None else format(within, '.1%'):>18}", file=sys.stderr)
    for n in (7, 9):
        within = flaps_within(sessions, n, gate_pct, better)
        if within is not None and n > max(map(len, sessions)):
            emit(what="flap", figure=figure, label=label, gate_pct=gate_pct, n=n, same_session_rate=within)
            print(f"{n:>3} {'':>6} {'':>6} {'':>7} {'':>19} {within:>18.1%}", file=sys.stderr)


def from_storage(storage: Path, figure: str) -> dict[str, list[list[float]]]:
    """nodeid -> one list of run figures per stored session (``record.repeats`` when the
    session repeated, else its one figure), oldest session first."""
    from pytest_mlperf.gate import storage as stored
    from pytest_mlperf.gate.compare import FIGURES

    get = FIGURES[figure].get
    out: dict[str, list[list[float]]] = {}
    for folder in sorted(p for p in storage.iterdir() if p.is_dir()):
        for _, path in stored.sessions(folder):
            for record in stored.load(path).records:
                if record.mode != "performance":
                    continue
                if record.repeats:
                    import dataclasses

                    values = [get(dataclasses.replace(record, figures=a.figures)) for a in record.repeats]
                else:
                    values = [get(record)]
                values = [v for v in values if v is not None]
                if values:
                    out.setdefault(f"{folder.name} {record.nodeid}", []).append(values)
    return out


# -- making the runs ---------------------------------------------------------------------------------

def session(index: int) -> None:
    """One fresh engine, RUNS runs, a RESULT line each."""
    from pytest_mlperf.backends.base import GenerationConfig, SystemSpec
    from pytest_mlperf.backends.vllm_backend import VllmBackend
    from pytest_mlperf.core.vocabulary import Mode, Profile, Scenario
    from pytest_mlperf.loadgen.runner import run_loadgen
    from pytest_mlperf.loadgen.settings import SettingsPlan

    scenario = Scenario.parse(os.environ.get("SCENARIO", "Offline"))
    n = int(os.environ.get("N", "1000"))
    tp = int(os.environ.get("TP", "1"))
    args = engine_args_from_env({
        "load_format": "dummy", "dtype": "bfloat16", "max_model_len": 2048, "seed": 0,
        "gpu_memory_utilization": 0.9, "max_num_seqs": 512, "max_num_batched_tokens": 8192,
        "enable_prefix_caching": False, "tensor_parallel_size": tp,
        **({"disable_custom_all_reduce": True} if tp > 1 else {}),
    })
    prompts = offline_prompts(n, seed=index)  # fresh prompts per session, the same lengths
    backend = VllmBackend(SystemSpec.local(model_dir()), args, GenerationConfig())
    t0 = time.time()
    backend.start()
    backend.prepare(scenario)
    emit(what="startup_s", session=index, value=round(time.time() - t0, 1))
    overrides = {"min_query_count": n, "min_duration_ms": 0, "performance_sample_count_override": n}
    if scenario is not Scenario.OFFLINE:
        overrides.update(server_target_qps=float(os.environ.get("SERVER_QPS", "40")),
                         min_duration_ms=int(os.environ.get("DUR_MS", "60000")))
    plan = SettingsPlan(benchmark="llama3.1-8b", scenario=scenario, profile=Profile.OFFICIAL,
                        total_count=n, performance_count=n, cli_overrides=overrides)
    workdir = Path(tempfile.mkdtemp(prefix=f"repeat_noise_{index}_"))
    for run in range(int(os.environ.get("RUNS", "5"))):
        result = run_loadgen(plan=plan, mode=Mode.PERFORMANCE, backend=backend, prompts=prompts,
                             outdir=workdir / f"run_{run}")
        f = result.figures
        emit(what="run", session=index, run=run, validity=result.validity,
             tokens_per_second=f.tokens_per_second, samples_per_second=f.samples_per_second,
             ttft_p99_ms=f.ttft_ns.ms("p99"), tpot_p99_ms=f.tpot_ns.ms("p99"),
             wall_s=round(result.wall_seconds, 2), backend_error=result.backend_error)
    backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--session", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--storage", type=Path, help="analyse the plugin's stored sessions in this folder")
    parser.add_argument("--runs", type=Path, help="analyse RESULT lines of an earlier run of this script")
    parser.add_argument("--figure", default="tokens_per_second", choices=sorted(DIRECTION))
    parser.add_argument("--gate", type=float, default=float(os.environ.get("GATE", "5")), help="percent")
    opts = parser.parse_args()
    if opts.session is not None:
        session(opts.session)
        return
    if opts.storage is not None:
        found = from_storage(opts.storage, opts.figure)
        if not found:
            sys.exit(f"no performance records in stored sessions under {opts.storage}")
        for label, sessions in found.items():
            report(sessions, opts.figure, opts.gate, label)
        return
    lines = []
    if opts.runs is not None:
        lines = opts.runs.read_text().splitlines()
    else:
        first = int(os.environ.get("FIRST_SESSION", "0"))
        for index in range(first, first + int(os.environ.get("SESSIONS", "3"))):
            proc = subprocess.run([sys.executable, __file__, "--session", str(index)],
                                  capture_output=True, text=True, check=False)
            sys.stderr.write(proc.stderr[-2000:] if proc.returncode else "")
            for line in proc.stdout.splitlines():
                if line.startswith("RESULT "):
                    print(line, flush=True)
                    lines.append(line)
    runs: dict[int, list[float]] = {}
    for line in lines:
        if line.startswith("RESULT "):
            data = json.loads(line[len("RESULT "):])
            if data.get("what") == "run" and data.get(opts.figure) is not None:
                runs.setdefault(data["session"], []).append(float(data[opts.figure]))
    if not runs:
        sys.exit("no runs were made (see the errors above)")
    report([runs[k] for k in sorted(runs)], opts.figure, opts.gate)


if __name__ == "__main__":
    main()
