"""``--mlperf-find-peak``: the highest target QPS loadgen still calls VALID (Server, Interactive).

From the test's own ``server_target_qps`` the search doubles the rate while runs stay VALID (or
halves it while they are INVALID) until one VALID and one INVALID rate bracket the peak, then
bisects until the bracket is within the tolerance (``5%`` of the VALID end, or an amount in
QPS). Every probe is a full loadgen run in a folder of its own; each is reported with its rate,
verdict, figures and time. The test's result is the run at the peak: its figures, logs and
record, with the search beside them (``record.peak``), so ``--mlperf-save`` stores the peak as
the run's figure and ``--mlperf-compare-fail=peak_qps:5%`` gates on it.

A probe that hits an engine failure ends the search (the engine, not the rate, is at fault).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_mlperf.core.record import Attempt, PeakSearch

#: at most this many doublings or halvings to find the bracket (a factor of 256 either way)
MAX_BRACKET_STEPS = 8
#: and at most this many runs in all
MAX_RUNS = 24


@dataclass(frozen=True)
class PeakTolerance:
    """How close the VALID and INVALID rates must be for the search to stop."""

    amount: float
    relative: bool

    @classmethod
    def parse(cls, text: str) -> PeakTolerance:
        """``5%`` (of the VALID rate) or ``0.5`` (QPS); ValueError otherwise."""
        raw = text.strip()
        relative = raw.endswith("%")
        try:
            amount = float(raw[:-1] if relative else raw)
        except ValueError:
            amount = 0.0
        if not 0 < amount < float("inf") or (relative and amount >= 100):
            raise ValueError("expected a tolerance such as 5% (of the peak; under 100%) or 0.5 (QPS)")
        return cls(amount, relative)

    def __str__(self) -> str:
        return f"{self.amount:g}%" if self.relative else f"{self.amount:g}"

    def met(self, valid_qps: float, invalid_qps: float) -> bool:
        width = self.amount * valid_qps / 100 if self.relative else self.amount
        return invalid_qps - valid_qps <= width


def attempt(run: Any, target_qps: float | None) -> Attempt:
    """A run's line in a search or a set of repeats (``run``: a RunResult)."""
    return Attempt(outdir=str(run.outdir), validity=run.validity, invalid_reason=run.invalid_reason,
                   target_qps=target_qps, figures=run.figures, wall_s=round(run.wall_seconds, 3),
                   backend_error=run.backend_error)


def _valid(run: Any) -> bool:
    return run.validity == "VALID" and not run.backend_error and not run.loadgen_errors


def search(run_at: Callable[[float], Any], start_qps: float, tolerance: PeakTolerance,
           *, clock: Callable[[], float] = time.perf_counter) -> tuple[Any, PeakSearch]:
    """Search the peak with ``run_at(qps) -> RunResult``. Returns the run to report (the peak
    run, else the last one) and the search (its ``note`` says why it fell short, if it did)."""
    if not start_qps > 0:
        raise ValueError(f"find-peak starts from server_target_qps, which is {start_qps!r}; set it "
                         "(--mlperf-setting=server_target_qps=...)")
    began = clock()
    attempts: list[Attempt] = []
    valid: tuple[float, Any] | None = None
    invalid: float | None = None
    last: Any = None
    broken = False

    def probe(qps: float) -> bool:
        nonlocal valid, invalid, last, broken
        run = run_at(qps)
        attempts.append(attempt(run, qps))
        last = run
        if run.backend_error:
            broken = True
            return False
        if _valid(run):
            if valid is None or qps > valid[0]:
                valid = (qps, run)
            return True
        invalid = qps if invalid is None else min(invalid, qps)
        return False

    qps = start_qps
    up = probe(qps)
    steps = 0
    while not broken and steps < MAX_BRACKET_STEPS and (valid is None or invalid is None):
        qps = qps * 2 if up else qps / 2
        probe(qps)
        steps += 1
    while (not broken and valid is not None and invalid is not None and len(attempts) < MAX_RUNS
           and not tolerance.met(valid[0], invalid)):
        probe((valid[0] + invalid) / 2)

    short = None
    if broken:
        short = f"the engine failed at {attempts[-1].target_qps:g} qps; the search stopped"
    elif valid is None:
        short = f"no target QPS was VALID, down to {min(a.target_qps or 0 for a in attempts):g}"
    elif invalid is None:
        short = (f"every target QPS was VALID, up to {valid[0]:g} (no upper bound found in "
                 f"{len(attempts)} runs)")
    elif not tolerance.met(valid[0], invalid):
        short = f"stopped after {len(attempts)} runs, {valid[0]:g}..{invalid:g} qps, wider than {tolerance}"
    result = PeakSearch(peak_qps=valid[0] if valid else None, invalid_qps=invalid,
                        tolerance=str(tolerance), seconds=round(clock() - began, 3),
                        attempts=tuple(attempts), note=short)
    return (valid[1] if valid is not None and not broken else last), result
