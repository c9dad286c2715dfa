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


def _cell(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


COMPARISON_HEADER = ("figure", "stored", "now", "ratio", "change", "bound", "result")


def comparison_table(deltas: Sequence[Any], gates: Sequence[Any]) -> list[tuple[str, ...]]:
    """Rows (figure, stored, now, ratio, change, bound, result) of one test's comparison: every
    figure both runs have, with its gate's bound and outcome where one was set."""
    by_name = {g.name: g for g in gates}
    rows = []
    for delta in deltas:
        gate = by_name.get(delta.figure)
        ratio = delta.new / delta.old if delta.old else None
        rows.append((delta.figure, _cell(delta.old), _cell(delta.new),
                     "-" if ratio is None else f"{ratio:.3f}",
                     "-" if delta.change is None else f"{delta.change:+.1f}%",
                     gate.bound if gate is not None else "",
                     "" if gate is None else ("ok" if gate.passed else "REGRESSED")))
    shown = {d.figure for d in deltas}
    for gate in gates:  # gates of no figure: outputs (samples equal of samples stored)
        if gate.name not in shown:
            rows.append((gate.name, _cell(gate.stored), _cell(gate.value),
                         "-" if gate.ratio is None else f"{gate.ratio:.3f}", "", gate.bound,
                         "ok" if gate.passed else "REGRESSED"))
    return rows


def _table(rows: Sequence[tuple[str, ...]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for row in rows:
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        out.append((indent + "  ".join(cells)).rstrip())
    return out


def comparison_lines(records: Sequence[BenchmarkRecord], stored: Any, bounds: Any,
                     width: int = 120) -> list[str]:
    """Per test, a table of stored vs now (ratio, change, bound, result), as wide as the
    terminal allows: the node id and a regression's reason wrap, the table's columns do not."""
    import textwrap

    from pytest_mlperf.gate.compare import comparison

    def wrap(text: str, first: str = "", rest: str = "    ") -> list[str]:
        return textwrap.wrap(text, width, initial_indent=first, subsequent_indent=rest,
                             break_on_hyphens=False, break_long_words=False)

    lines = [f"against {stored.path}", *wrap(f"saved {stored.saved}, commit {stored.commit or 'unknown'}", "  ")]
    for record in sorted(records, key=lambda r: r.nodeid):
        found = comparison(stored, record, bounds)
        if found.skipped is not None:
            lines.append(f"{record.nodeid}: not compared: {found.skipped}")  # one line: grep finds it
            continue
        lines.append(record.nodeid if len(record.nodeid) <= width else record.nodeid[:width - 1] + "…")
        rows = comparison_table(found.deltas, record.gates or found.gates)
        if not rows:
            lines.append("  no figure in common")
            continue
        lines += _table([COMPARISON_HEADER, *rows])
        outputs = [r for r in record.verdict.reasons if r.startswith("outputs differ")]
        for reason in (*found.regressions, *outputs):
            lines += wrap(f"REGRESSED {reason}", "  ", "      ")
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
             saved: Path | None, width: int = 120) -> list[tuple[str, list[str]]]:
    """(title, lines) of every section that has something to say."""
    out = []
    if stored is not None and records:
        out.append(("MLPerf comparison", comparison_lines(records, stored, bounds, width)))
    for title, lines in (("MLPerf repeats", repeat_lines(records)),
                         ("MLPerf peak search", peak_lines(records)),
                         ("MLPerf compliance", compliance_lines(records))):
        if lines:
            out.append((title, lines))
    if saved is not None:
        out.append(("MLPerf stored", [f"saved {len(records)} records to {saved}"]))
    return out
