"""Checks on one run -> a :class:`~pytest_mlperf.core.record.Verdict` with a specific reason for
every miss.

The detail log is the authority for validity; the marker's thresholds and the accuracy
baseline add gates of their own. Nothing here runs loadgen or an engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_mlperf.core.declaration import Thresholds
from pytest_mlperf.core.record import Verdict

if TYPE_CHECKING:
    from pytest_mlperf.accuracy import AccuracyScores, Baseline
    from pytest_mlperf.loadgen.runner import RunResult

__all__ = ["Verdict", "judge_accuracy", "judge_performance"]


def _run_failures(result: RunResult) -> list[str]:
    """Failures any run can have, whatever its mode: a broken engine, loadgen errors."""
    reasons = []
    if result.backend_error:
        reasons.append(f"engine failed: {result.backend_error} (logs kept in {result.outdir})")
    if result.loadgen_errors:
        shown = "; ".join(result.loadgen_errors[:3])
        more = f" (+{len(result.loadgen_errors) - 3} more)" if len(result.loadgen_errors) > 3 else ""
        reasons.append(f"loadgen reported errors: {shown}{more}")
    return reasons


def judge_performance(result: RunResult, thresholds: Thresholds) -> Verdict:
    reasons = _run_failures(result)
    if result.validity is None:
        reasons.append(f"no result_validity in {result.detail_log}: loadgen did not finish the run")
    elif result.validity != "VALID":
        why = result.invalid_reason or ", ".join(
            f"{name} not met" for name, ok in result.flags.items() if not ok
        ) or "no reason logged"
        reasons.append(f"loadgen says INVALID: {why}")
        reasons += early_stopping_reasons(result)
    figures = result.figures
    for name, value, unit in (
        ("min_tokens_per_second", figures.tokens_per_second, "tokens/s"),
        ("min_samples_per_second", figures.samples_per_second, "samples/s"),
    ):
        bound = getattr(thresholds, name)
        if bound is None:
            continue
        if value is None:
            reasons.append(f"no {unit} in the detail log to compare with {name}")
        elif value < bound:
            reasons.append(f"{unit} {value:.2f} < {name} {bound:g}")
    for label, name, dist in (("TTFT", "max_ttft_ms", figures.ttft_ns),
                              ("TPOT", "max_tpot_ms", figures.tpot_ns)):
        bound = getattr(thresholds, name)
        if bound is None:
            continue
        value = dist.ms("p99")
        if value is None:
            reasons.append(f"no p99 {label} in the detail log to compare with {name}")
        elif value > bound:
            reasons.append(f"p99 {label} {value:.1f} ms > {name} {bound:g}")
    return Verdict(passed=not reasons, reasons=tuple(reasons))


def early_stopping_reasons(result: RunResult) -> list[str]:
    """What loadgen's early stopping decided for an INVALID latency run, and what to do."""
    if result.scenario.value == "Offline":
        return []
    from pytest_mlperf.loadgen.early_stopping import explain
    from pytest_mlperf.loadgen.logs import read_detail

    try:
        log = read_detail(result.detail_log)
    except (OSError, ValueError):
        return []
    return explain(log, result.scenario.value)


def judge_accuracy(result: RunResult, scores: AccuracyScores | None, baseline: Baseline) -> Verdict:
    from pytest_mlperf.accuracy import check

    reasons = _run_failures(result)
    if scores is None:
        reasons.append(f"no accuracy log scored from {result.accuracy_log}")
    else:
        misses = check(scores, baseline)
        if misses:
            reasons.append(f"accuracy below baseline '{baseline.name}': " + "; ".join(map(str, misses)))
    return Verdict(passed=not reasons, reasons=tuple(reasons))
