"""Terminal sections of the gate: comparison with the stored run, spread of repeats, peak
searches, compliance results, and where the session was saved. Read from records only."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pytest_mlperf.core.record import Attempt, BenchmarkRecord


def _ms(ns: float | None) -> str:
    return "-" if ns is None else f"{ns / 1e6:.1f} ms"


def attempt_line(a: Attempt) -> str:
    from pytest_mlperf.run.benchmark import relative

    rate = f"{a.target_qps:g} qps " if a.target_qps is not None else ""
    figures = a.figures
    parts = [f"{rate}{a.validity or 'NO RESULT'}"]
    if figures.tokens_per_second is not None:
        parts.append(f"{figures.tokens_per_second:.1f} tokens/s")
    if figures.ttft_ns.p99 is not None:
        parts.append(f"p99 TTFT {_ms(figures.ttft_ns.p99)}")
    if figures.tpot_ns.p99 is not None:
        parts.append(f"p99 TPOT {_ms(figures.tpot_ns.p99)}")
    parts.append(f"{a.wall_s:.1f} s")
    if a.backend_error:
        parts.append(f"engine failed: {a.backend_error}")
    elif a.invalid_reason and a.validity != "VALID":
        parts.append(a.invalid_reason)
    return ", ".join(parts) + f"  logs: {relative(a.outdir)}"


def comparison_lines(records: Sequence[BenchmarkRecord], stored: Any, bounds: Any) -> list[str]:
    from pytest_mlperf.gate.compare import comparison

    lines = [f"against {stored.path} (saved {stored.saved}, commit {stored.commit or 'unknown'})"]
    for record in sorted(records, key=lambda r: r.nodeid):
        found = comparison(stored, record, bounds)
        if found.skipped is not None:
            lines.append(f"{record.nodeid}: not compared: {found.skipped}")
            continue
        lines.append(f"{record.nodeid}: " + (", ".join(map(str, found.deltas)) or "no figure in common"))
        lines += [f"    REGRESSED {r}" for r in found.regressions]
    return lines


def repeat_lines(records: Iterable[BenchmarkRecord]) -> list[str]:
    from pytest_mlperf.run.repeat import spread

    lines = []
    for record in sorted(records, key=lambda r: r.nodeid):
        if not record.repeats:
            continue
        runs = record.repeats
        valid = sum(a.validity == "VALID" for a in runs)
        head = f"{record.nodeid}: {len(runs)} runs, {valid}/{len(runs)} VALID"
        for figure, unit in (("tokens_per_second", "tokens/s"), ("samples_per_second", "samples/s")):
            found = spread(runs, figure)
            if found is not None:
                low, median, high = found
                width = 100 * (high - low) / median if median else 0.0
                head += (f"; {unit} median {median:.1f} (min {low:.1f}, max {high:.1f}, "
                         f"spread {width:.1f}% of the median)")
                break
        lines.append(head)
        lines += [f"    {attempt_line(a)}" for a in runs]
    return lines


def peak_lines(records: Iterable[BenchmarkRecord]) -> list[str]:
    lines = []
    for record in sorted(records, key=lambda r: r.nodeid):
        search = record.peak
        if search is None:
            continue
        found = "no VALID target QPS" if search.peak_qps is None else f"peak {search.peak_qps:g} qps VALID"
        above = "" if search.invalid_qps is None else f", {search.invalid_qps:g} qps INVALID"
        lines.append(f"{record.nodeid}: {found}{above} (tolerance {search.tolerance}; "
                     f"{len(search.attempts)} runs in {search.seconds:.1f} s)")
        if search.note:
            lines.append(f"    note: {search.note}")
        lines += [f"    {attempt_line(a)}" for a in search.attempts]
    return lines


def compliance_lines(records: Iterable[BenchmarkRecord]) -> list[str]:
    from pytest_mlperf.run.benchmark import relative
    from pytest_mlperf.submission.compliance import LINES, VERIFY_FILE

    lines = []
    for record in sorted(records, key=lambda r: r.nodeid):
        for result in record.compliance:
            checks = ", ".join(f"{line.removesuffix(' check pass').lower()} {result.checks.get(k, '-')}"
                               for k, line in LINES.items())
            lines.append(f"{'PASS' if result.passed else 'FAIL'} {result.test} {record.nodeid}: "
                         f"{checks} ({result.samples} samples)  {relative(Path(result.outdir) / VERIFY_FILE)}")
            lines += [f"    {f}" for f in result.failures]
    return lines


def sections(records: Sequence[BenchmarkRecord], stored: Any, bounds: Any,
             saved: Path | None) -> list[tuple[str, list[str]]]:
    """(title, lines) of every section that has something to say."""
    out = []
    if stored is not None and records:
        out.append(("MLPerf comparison", comparison_lines(records, stored, bounds)))
    for title, lines in (("MLPerf repeats", repeat_lines(records)),
                         ("MLPerf peak search", peak_lines(records)),
                         ("MLPerf compliance", compliance_lines(records))):
        if lines:
            out.append((title, lines))
    if saved is not None:
        out.append(("MLPerf stored", [f"saved {len(records)} records to {saved}"]))
    return out
