"""One line per benchmark test for pytest's terminal summary, read from its record."""

from __future__ import annotations

from collections.abc import Iterable

from pytest_mlperf.benchmark import relative
from pytest_mlperf.record import BenchmarkRecord

_ROUGE = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def _ms(value: float | None) -> str | None:
    return None if value is None else f"{value:.1f} ms"


def _performance(record: BenchmarkRecord) -> str:
    figures = record.figures
    parts = [record.run.validity or "NO RESULT"]
    if figures.tokens_per_second is not None:
        parts.append(f"{figures.tokens_per_second:.1f} tokens/s")
    for label, value in (("p99 TTFT", _ms(figures.ttft_ns.ms("p99"))),
                         ("p99 TPOT", _ms(figures.tpot_ns.ms("p99")))):
        if value is not None:
            parts.append(f"{label} {value}")
    if record.scenario == "SingleStream" and figures.latency_ns.p90 is not None:
        parts.append(f"p90 latency {_ms(figures.latency_ns.ms('p90'))}")
    return ", ".join(parts)


def _accuracy(record: BenchmarkRecord) -> str:
    acc = record.accuracy
    if acc is None or not acc.scored:
        return "not scored"
    target = acc.target
    parts = []
    for key in _ROUGE:
        text = f"{key} {getattr(acc, key):.4f}"
        bound = getattr(target, key, None) if target is not None else None
        if bound:
            text += f" (>= {bound * target.ratio:.4f})"
        parts.append(text)
    parts.append(f"gen_len {acc.gen_len}, gen_num {acc.gen_num}")
    if acc.note:
        parts.append(acc.note)
    return ", ".join(parts)


def summary_line(record: BenchmarkRecord) -> str:
    verdict = "PASS" if record.verdict.passed else "FAIL"
    head = (f"{verdict} {record.benchmark} {record.scenario} {record.mode} "
            f"[{record.system.backend}, {record.profile} profile, {record.dataset.samples} samples]")
    body = _performance(record) if record.mode == "performance" else _accuracy(record)
    line = f"{head}: {body}  logs: {relative(record.run.outdir)}"
    if not record.verdict.passed:
        line += "\n    " + record.verdict.explain()
    return line


def summary_lines(records: Iterable[BenchmarkRecord]) -> list[str]:
    return [summary_line(r) for r in sorted(records, key=lambda r: r.nodeid)]
