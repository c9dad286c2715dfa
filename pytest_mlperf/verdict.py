"""Checks on one run -> a :class:`Verdict` with a specific reason for every miss.

The detail log is the authority for validity; the marker's thresholds and the accuracy
baseline add gates of their own. Nothing here runs loadgen or an engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_mlperf.loadgen.runner import RunResult
from pytest_mlperf.spec import BenchmarkSpec

if TYPE_CHECKING:
    from pytest_mlperf.accuracy import AccuracyScores, Baseline


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reasons: tuple[str, ...] = ()

    def explain(self) -> str:
        return "; ".join(self.reasons) if self.reasons else "passed"

    def as_dict(self) -> dict[str, object]:
        return {"passed": self.passed, "reasons": list(self.reasons)}


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


def judge_performance(result: RunResult, spec: BenchmarkSpec) -> Verdict:
    reasons = _run_failures(result)
    if result.validity is None:
        reasons.append(f"no result_validity in {result.detail_log}: loadgen did not finish the run")
    elif result.validity != "VALID":
        why = result.invalid_reason or ", ".join(
            f"{name} not met" for name, ok in result.flags.items() if not ok
        ) or "no reason logged"
        reasons.append(f"loadgen says INVALID: {why}")
    tps = result.figures.get("tokens_per_second")
    if spec.min_tokens_per_second is not None:
        if tps is None:
            reasons.append("no tokens/s in the detail log to compare with min_tokens_per_second")
        elif tps < spec.min_tokens_per_second:
            reasons.append(f"tokens/s {tps:.2f} < min_tokens_per_second {spec.min_tokens_per_second:g}")
    for name, limit_ms, key in (("TTFT", spec.max_ttft_ms, "ttft_p99_ns"), ("TPOT", spec.max_tpot_ms, "tpot_p99_ns")):
        if limit_ms is None:
            continue
        value = result.figures.get(key)
        if value is None:
            reasons.append(f"no p99 {name} in the detail log to compare with max_{name.lower()}_ms")
        elif value / 1e6 > limit_ms:
            reasons.append(f"p99 {name} {value / 1e6:.1f} ms > max_{name.lower()}_ms {limit_ms:g}")
    return Verdict(passed=not reasons, reasons=tuple(reasons))


def judge_accuracy(
    result: RunResult, scores: AccuracyScores | None, baseline: Baseline, ratio: float
) -> Verdict:
    from pytest_mlperf.accuracy import check

    reasons = _run_failures(result)
    if scores is None:
        reasons.append(f"no accuracy log scored from {result.accuracy_log}")
    else:
        misses = check(scores, baseline, ratio)
        if misses:
            reasons.append(f"accuracy below baseline '{baseline.name}': " + "; ".join(map(str, misses)))
    return Verdict(passed=not reasons, reasons=tuple(reasons))
