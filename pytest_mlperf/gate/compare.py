"""Today's figures against a stored session's: deltas per figure, and regression bounds.

``--mlperf-compare-fail`` takes ``FIGURE:BOUND`` expressions: ``tokens_per_second:5%`` fails a
test whose tokens/s fell more than 5 % below the stored run's, ``ttft_p99_ms:10%`` one whose
p99 TTFT rose more than 10 %, ``rouge1:0.5`` (no %: in the figure's own unit) one whose ROUGE-1
fell by more than 0.5. Each figure knows which way is worse. A stored run is compared only
when it is the same test on the same hardware with the same system, loadgen settings, profile
and data; otherwise the comparison says why it was not made instead of comparing.

Imports nothing heavy: :func:`parse_fail_bound` runs when options are read.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_mlperf.core.record import BenchmarkRecord, GateResult
from pytest_mlperf.gate.significance import ALPHA

if TYPE_CHECKING:
    from pytest_mlperf.gate.storage import StoredSession


@dataclass(frozen=True)
class Figure:
    name: str
    unit: str
    #: +1 when higher is better (throughput, accuracy), -1 when lower is (latency)
    better: int
    get: Callable[[BenchmarkRecord], float | None]


def _acc(key: str) -> Callable[[BenchmarkRecord], float | None]:
    return lambda r: getattr(r.accuracy, key) if r.accuracy is not None else None


def _peak(r: BenchmarkRecord) -> float | None:
    return r.peak.peak_qps if r.peak is not None else None


#: the figures a comparison reads; names as the record's flat JUnit properties
FIGURES: dict[str, Figure] = {f.name: f for f in (
    Figure("tokens_per_second", "tokens/s", +1, lambda r: r.figures.tokens_per_second),
    Figure("samples_per_second", "samples/s", +1, lambda r: r.figures.samples_per_second),
    Figure("ttft_p99_ms", "ms", -1, lambda r: r.figures.ttft_ns.ms("p99")),
    Figure("tpot_p99_ms", "ms", -1, lambda r: r.figures.tpot_ns.ms("p99")),
    Figure("latency_p99_ms", "ms", -1, lambda r: r.figures.latency_ns.ms("p99")),
    Figure("latency_p90_ms", "ms", -1, lambda r: r.figures.latency_ns.ms("p90")),
    Figure("peak_qps", "qps", +1, _peak),
    Figure("rouge1", "", +1, _acc("rouge1")),
    Figure("rouge2", "", +1, _acc("rouge2")),
    Figure("rougeL", "", +1, _acc("rougeL")),
    Figure("rougeLsum", "", +1, _acc("rougeLsum")),
)}
#: ``--mlperf-compare-fail=outputs``: not a number, the output tokens of every sample
#: (:mod:`pytest_mlperf.gate.outputs`); no figure of its own, so the numeric gates skip it
OUTPUTS = Figure("outputs", "", +1, lambda r: None)
#: names people write for the same figures
ALIASES = {"ttft_p99": "ttft_p99_ms", "tpot_p99": "tpot_p99_ms", "latency_p99": "latency_p99_ms",
           "latency_p90": "latency_p90_ms", "tokens/s": "tokens_per_second"}


@dataclass(frozen=True)
class FailBound:
    """One ``--mlperf-compare-fail`` expression."""

    figure: Figure
    amount: float
    relative: bool
    #: ``:mwu``: fail only when the change is also significant at this level
    #: (:mod:`pytest_mlperf.gate.significance`); None: the bound alone
    alpha: float | None = None

    def __str__(self) -> str:
        if self.figure is OUTPUTS:
            return OUTPUTS.name
        stat = "" if self.alpha is None else ":mwu" if self.alpha == ALPHA else f":mwu={self.alpha:g}"
        return f"{self.figure.name}:{self.amount:g}{'%' if self.relative else ''}{stat}"

    def limit(self, old: float) -> float:
        """The worst value that still passes, given the stored one."""
        delta = abs(old) * self.amount / 100 if self.relative else self.amount
        return old - delta if self.figure.better > 0 else old + delta

    def regressed(self, old: float, new: float) -> bool:
        limit = self.limit(old)
        return new < limit if self.figure.better > 0 else new > limit


def parse_fail_bound(text: str) -> FailBound:
    """``tokens_per_second:5%`` -> FailBound; ``argparse.ArgumentTypeError`` naming the valid
    figures otherwise (as pytest-benchmark's ``--benchmark-compare-fail`` does)."""
    if text.strip() in (OUTPUTS.name, f"{OUTPUTS.name}:exact"):
        return FailBound(OUTPUTS, 0.0, False)
    name, sep, raw = text.strip().partition(":")
    name = ALIASES.get(name.strip(), name.strip())
    figure = FIGURES.get(name)
    if not sep or figure is None:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected FIGURE:BOUND with FIGURE one of {', '.join(FIGURES)} "
            "and BOUND a percentage (5%) or an amount in the figure's unit (0.5), or "
            f"{OUTPUTS.name} (every sample's output tokens equal to the stored run's)"
        )
    raw, _, stat = raw.strip().partition(":")
    alpha = None
    if stat:
        kind, eq, level = stat.strip().partition("=")
        try:
            alpha = float(level) if eq else ALPHA
        except ValueError:
            alpha = -1.0
        if kind != "mwu" or not 0 < alpha < 1:
            raise argparse.ArgumentTypeError(
                f"{text!r}: after the bound, expected :mwu or :mwu=ALPHA with 0 < ALPHA < 1 (a "
                "Mann-Whitney test over --mlperf-repeat's runs; docs/ci.md, 'Gates that hold under noise')")
    raw = raw.strip()
    relative = raw.endswith("%")
    try:
        amount = float(raw[:-1] if relative else raw)
    except ValueError:
        amount = -1.0
    if not amount >= 0 or amount == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: the bound {raw!r} is not a number >= 0 (e.g. 5% or 0.5)")
    return FailBound(figure, amount, relative, alpha)


@dataclass(frozen=True)
class Delta:
    figure: str
    old: float
    new: float
    unit: str

    @property
    def change(self) -> float | None:
        return None if self.old == 0 else 100.0 * (self.new - self.old) / abs(self.old)

    def __str__(self) -> str:
        change = "" if self.change is None else f" ({self.change:+.1f}%)"
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.figure} {_num(self.old)} -> {_num(self.new)}{unit}{change}"


def _num(value: float) -> str:
    """Four significant digits, never in e-notation (9520, 10470, 26.89, 0.0512)."""
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.4g}"


@dataclass(frozen=True)
class Comparison:
    """One test against its stored run: the deltas, the regressions, or why none was made."""

    nodeid: str
    against: str
    deltas: tuple[Delta, ...] = ()
    regressions: tuple[str, ...] = ()
    #: why the stored run was not compared (other hardware, other settings, none stored)
    skipped: str | None = None
    #: warnings about the comparison itself (a bound on a run too short to hold it)
    notes: tuple[str, ...] = ()
    #: every bound's result, passed or not
    gates: tuple[GateResult, ...] = ()


#: a performance figure of a shorter run is mostly start-up and scheduling: on an H200 the
#: embedded model's 0.5-0.8 s Offline run gave 24,555 then 13,598 tokens/s with nothing changed
#: (docs/performance.md), where 9 s runs of an 8B model stayed within 1.5 %
SHORT_RUN_S = 5.0


#: effective loadgen settings that differ between comparable runs
_VOLATILE_SETTINGS = frozenset({"test_mode"})


def why_not_comparable(old: BenchmarkRecord, new: BenchmarkRecord) -> str | None:
    """None when ``old`` may be compared with ``new``; else what differs, for a warning."""
    from pytest_mlperf.gate.storage import machine_id

    if machine_id(old.system.device) != machine_id(new.system.device):
        return (f"stored on other hardware ({machine_id(old.system.device)}; this machine is "
                f"{machine_id(new.system.device)})")
    for label, a, b in (
        ("test", (old.benchmark, old.scenario, old.mode), (new.benchmark, new.scenario, new.mode)),
        ("backend", old.system.backend, new.system.backend),
        ("model", old.system.model, new.system.model),
        ("engine arguments", old.system.engine_args, new.system.engine_args),
        ("profile", old.profile, new.profile),
        ("data set", old.dataset.sha256, new.dataset.sha256),
        ("sample count", old.dataset.samples, new.dataset.samples),
        ("peak search", old.peak is not None, new.peak is not None),
    ):
        if a != b:
            return f"other {label} ({_short(a)} then, {_short(b)} now)"
    # A peak search chooses its own target QPS: that one may differ.
    ignore = _VOLATILE_SETTINGS | ({"target_qps"} if new.peak is not None else set())
    changed = sorted(k for k in set(old.run.settings) | set(new.run.settings)
                     if k not in ignore and old.run.settings.get(k) != new.run.settings.get(k))
    if changed:
        shown = ", ".join(f"{k} {old.run.settings.get(k)} -> {new.run.settings.get(k)}" for k in changed[:3])
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        return f"other loadgen settings ({shown}{more})"
    return None


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def compare(old: BenchmarkRecord, new: BenchmarkRecord, bounds: Sequence[FailBound],
            against: str) -> Comparison:
    """``new`` against ``old``: every figure both have, and the bounds ``new`` broke."""
    reason = why_not_comparable(old, new)
    if reason is not None:
        return Comparison(nodeid=new.nodeid, against=against, skipped=reason)
    deltas = []
    for figure in FIGURES.values():
        a, b = figure.get(old), figure.get(new)
        if a is not None and b is not None:
            deltas.append(Delta(figure.name, a, b, figure.unit))
    regressions, notes, gates = [], [], []
    for bound in bounds:
        a, b = bound.figure.get(old), bound.figure.get(new)
        if a is None or b is None:
            continue
        short = _too_short(bound, old, new)
        if short is not None:
            notes.append(short)
        regressed, detail = bound.regressed(a, b), ""
        if bound.alpha is not None:
            from pytest_mlperf.gate.significance import significant

            sig, detail = significant(_runs(bound.figure, new, b), _runs(bound.figure, old, a),
                                      bound.figure.better > 0, bound.alpha)
            regressed = regressed and sig
        gates.append(GateResult(
            name=bound.figure.name, bound=str(bound).partition(":")[2], stored=a, value=b,
            ratio=b / a if a else None, passed=not regressed,
            method="mann-whitney" if bound.alpha is not None else "percent" if bound.relative else "amount",
            limit=bound.limit(a), detail=detail))
        if regressed:
            op = "<" if bound.figure.better > 0 else ">"
            unit = f" {bound.figure.unit}" if bound.figure.unit else ""
            regressions.append(
                f"{bound.figure.name} regressed: {b:.6g}{unit} {op} {bound.limit(a):.6g} "
                f"(stored {a:.6g}{unit} in {against}; --mlperf-compare-fail={bound})"
                + (f"; significant: {detail}" if detail else "")
                + (f"; note: {short}" if short else "")
            )
    return Comparison(nodeid=new.nodeid, against=against, deltas=tuple(deltas),
                      regressions=tuple(regressions), notes=tuple(notes), gates=tuple(gates))


def _runs(figure: Figure, record: BenchmarkRecord, value: float) -> list[float]:
    """The figure of every ``--mlperf-repeat`` run behind ``record``; its one value without."""
    found = []
    for attempt in record.repeats:
        try:
            got = figure.get(attempt)  # type: ignore[arg-type]  # an Attempt has .figures
        except AttributeError:
            got = None
        if got is not None:
            found.append(got)
    return found or [value]


def _too_short(bound: FailBound, old: BenchmarkRecord, new: BenchmarkRecord) -> str | None:
    """Why a bound on a performance figure cannot be trusted for runs this short, or None."""
    if new.mode != "performance" or bound.figure.name == "peak_qps":
        return None
    runs = [r.timings.run_s for r in (old, new) if r.timings.run_s > 0]
    if not runs or min(runs) >= SHORT_RUN_S:
        return None
    return (f"{bound.figure.name} is gated on a {min(runs):.1f} s run (under {SHORT_RUN_S:g} s, "
            "start-up and scheduling outweigh the engine): lengthen the run "
            "(docs/ci.md, 'Runs too short to gate')")


def match(stored: Sequence[BenchmarkRecord], record: BenchmarkRecord) -> BenchmarkRecord | None:
    """The stored record of the same test (node id); else the only one of the same benchmark,
    scenario and mode (a renamed test file); else None."""
    for r in stored:
        if r.nodeid == record.nodeid:
            return r
    same = [r for r in stored
            if (r.benchmark, r.scenario, r.mode) == (record.benchmark, record.scenario, record.mode)]
    return same[0] if len(same) == 1 else None


def comparison(stored: StoredSession, record: BenchmarkRecord,
               bounds: Any = ()) -> Comparison:
    """``record`` against its stored run (or why there is none)."""
    old = match(stored.records, record)
    if old is None:
        return Comparison(nodeid=record.nodeid, against=stored.label,
                                  skipped=f"no stored run of this test in {stored.label}")
    # a run whose figures cannot be trusted (a failed backend, an interrupt, empty answers) is
    # never a baseline, and is never judged against one
    for which, r in (("the stored run", old), ("this run", record)):
        if not r.figures_valid:
            return Comparison(nodeid=record.nodeid, against=stored.label,
                              skipped=f"{which}'s figures cannot be trusted "
                                      f"({r.figures_invalid_reason or 'no reason stored'}): not compared")
    return compare(old, record, bounds, stored.label)
