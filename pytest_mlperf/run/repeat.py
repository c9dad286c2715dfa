"""``--mlperf-repeat N``: one performance test, N loadgen runs, judged on their medians.

The run the test reports is the median one: every figure (rates, each statistic of the
latency, TTFT and TPOT distributions) is the median over the runs; loadgen's verdict is the
majority's (VALID when more than half the runs are); every loadgen error and the first engine
failure of any run are kept, so they still fail the test. Its logs are the run whose tokens/s
is the median's. ``record.repeats`` keeps every run, for the spread.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from pytest_mlperf.core.record import Attempt, Distribution, Figures


def median_or_none(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def median_figures(figures: Sequence[Figures]) -> Figures:
    """Each figure and each statistic of each distribution: its median over ``figures``."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(Figures):
        values = [getattr(x, f.name) for x in figures]
        if f.name.endswith("_ns"):
            out[f.name] = Distribution(**{
                s.name: median_or_none([getattr(d, s.name) for d in values])
                for s in dataclasses.fields(Distribution)
            })
        elif f.name == "query_count":
            m = median_or_none(values)
            out[f.name] = None if m is None else int(m)
        else:
            out[f.name] = median_or_none(values)
    return Figures(**out)


def _rate(run: Any) -> float:
    return run.figures.tokens_per_second or run.figures.samples_per_second or 0.0


def combine(runs: Sequence[Any]) -> Any:
    """N ``RunResult``s -> one whose figures are their medians and whose validity is the
    majority's, with the median run's folder and settings."""
    if len(runs) == 1:
        return runs[0]
    ranked = sorted(runs, key=_rate)
    middle = ranked[(len(ranked) - 1) // 2]
    valid = sum(r.validity == "VALID" for r in runs)
    majority = valid * 2 > len(runs)
    reasons = sorted({r.invalid_reason or "no reason logged" for r in runs if r.validity != "VALID"})
    validity = "VALID" if majority else ("INVALID" if any(r.validity for r in runs) else None)
    return dataclasses.replace(
        middle,
        figures=median_figures([r.figures for r in runs]),
        validity=validity,
        invalid_reason=None if majority else f"{len(runs) - valid} of {len(runs)} runs INVALID: " + "; ".join(reasons),
        flags={name: sum(bool(r.flags.get(name)) for r in runs) * 2 > len(runs)
               for name in sorted({k for r in runs for k in r.flags})},
        loadgen_errors=tuple(e for r in runs for e in r.loadgen_errors),
        backend_error=next((r.backend_error for r in runs if r.backend_error), None),
        wall_seconds=sum(r.wall_seconds for r in runs),
        timed_out=any(r.timed_out for r in runs),
        empty_answers=sum(r.empty_answers for r in runs),
    )


def repeated(run_once: Callable[[], Any], times: int) -> tuple[Any, tuple[Any, ...]]:
    """Run ``times`` times (stopping at an engine failure); the combined run and every run."""
    runs = []
    for _ in range(times):
        runs.append(run_once())
        if runs[-1].backend_error:
            break
    return combine(runs), tuple(runs)


def spread(attempts: Sequence[Attempt], figure: str = "tokens_per_second") -> tuple[float, float, float] | None:
    """(min, median, max) of one figure over the runs, None when no run has it."""
    values = [getattr(a.figures, figure) for a in attempts]
    present = sorted(v for v in values if v is not None)
    if not present:
        return None
    return present[0], statistics.median(present), present[-1]
