"""Summaries CI systems show: Markdown for GitHub's job summary, OpenMetrics for GitLab.

``summary.md`` (and ``$GITHUB_STEP_SUMMARY`` when set: GitHub renders what a step appends
there on the run's page) holds the terminal's table as Markdown and every failure's reasons.
``metrics.txt`` is OpenMetrics text, one gauge family per figure with the test's labels,
which GitLab's ``artifacts:reports:metrics`` shows per merge request, against the target
branch's. Both are written from the records, on the controller.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from pytest_mlperf.core.record import BenchmarkRecord
from pytest_mlperf.report.terminal import COLUMNS, ROUGE, cells, conformance_text, relative

SUMMARY_FILE = "summary.md"
METRICS_FILE = "metrics.txt"


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def markdown_summary(records: Iterable[BenchmarkRecord], reproduce: str = "") -> str:
    ordered = sorted(records, key=lambda r: r.nodeid)
    passed = sum(r.verdict.passed for r in ordered)
    heads = [head for _, head, _ in COLUMNS] + ["MLPerf", "logs"]
    lines = [f"### MLPerf results: {passed} passed, {len(ordered) - passed} failed", ""]
    if reproduce:
        lines += ["```", reproduce, "```", ""]
    lines += ["| " + " | ".join(heads) + " |",
              "|" + "|".join("---:" if right else "---" for _, _, right in COLUMNS) + "|---|---|"]
    for record in ordered:
        row = cells(record)
        values = [_md(row[key]) for key, _, _ in COLUMNS] + [
            _md(conformance_text(record) or "-"), f"`{_md(relative(record.run.outdir))}`"]
        lines.append("| " + " | ".join(values) + " |")
    lines += comparison_markdown(ordered)
    failures = [r for r in ordered if not r.verdict.passed]
    if failures:
        lines += ["", "**Failures**", ""]
        for record in failures:
            lines.append(f"- `{_md(record.nodeid)}`: " + "; ".join(_md(x) for x in record.verdict.reasons))
    return "\n".join(lines) + "\n"


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def comparison_markdown(records: Iterable[BenchmarkRecord]) -> list[str]:
    """The gates against the stored session: stored vs now, ratio, bound, result per test."""
    gated = [r for r in records if r.gates]
    if not gated:
        return []
    against = sorted({r.compared_with or "" for r in gated})
    lines = ["", f"**Compared with** `{_md(', '.join(against))}`", "",
             "| test | figure | stored | now | ratio | bound | result |",
             "|---|---|---:|---:|---:|---:|---|"]
    for record in gated:
        for gate in record.gates:
            ratio = "-" if gate.ratio is None else f"{gate.ratio:.3f}"
            result = "ok" if gate.passed else "**REGRESSED**"
            lines.append(f"| `{_md(record.nodeid)}` | {gate.name} | {_num(gate.stored)} | {_num(gate.value)} "
                         f"| {ratio} | {_md(gate.bound)} ({gate.method}) | {result} |")
    return lines


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _samples(record: BenchmarkRecord) -> list[tuple[str, str, float, dict[str, str]]]:
    """(family, help, value, extra labels) for every figure the record has."""
    out: list[tuple[str, str, float, dict[str, str]]] = [
        ("mlperf_passed", "1 when the benchmark test passed, else 0", float(record.verdict.passed), {})]
    if record.run.validity is not None:
        out.append(("mlperf_valid", "1 when loadgen called the run VALID, else 0",
                    float(record.run.validity == "VALID"), {}))
    figures = record.figures
    for name, value, text in (
        ("mlperf_tokens_per_second", figures.tokens_per_second, "output tokens per second (loadgen)"),
        ("mlperf_samples_per_second", figures.samples_per_second, "samples per second (loadgen)"),
    ):
        if value is not None:
            out.append((name, text, value, {}))
    for name, dist, text in (("mlperf_ttft_p99_seconds", figures.ttft_ns, "p99 time to first token"),
                             ("mlperf_tpot_p99_seconds", figures.tpot_ns, "p99 time per output token"),
                             ("mlperf_latency_p99_seconds", figures.latency_ns, "p99 query latency")):
        if dist.p99 is not None:
            out.append((name, f"{text} (loadgen), seconds", dist.p99 / 1e9, {}))
    acc = record.accuracy
    if acc is not None and acc.scored:
        for key in ROUGE:
            value = getattr(acc, key)
            if value is not None:
                out.append(("mlperf_rouge", "ROUGE F-measure x 100", value, {"metric": key}))
            percent = acc.percent_of_target(key)
            if percent is not None:
                out.append(("mlperf_rouge_percent_of_target", "ROUGE as a percentage of its target",
                            percent, {"metric": key}))
        if acc.gen_len is not None:
            out.append(("mlperf_gen_len", "characters generated over the scored samples",
                        float(acc.gen_len), {}))
    return out


def openmetrics(records: Iterable[BenchmarkRecord]) -> str:
    families: dict[str, tuple[str, list[str]]] = {}
    for record in sorted(records, key=lambda r: r.nodeid):
        base = {"test": record.nodeid, "benchmark": record.benchmark, "scenario": record.scenario,
                "mode": record.mode, "backend": record.system.backend}
        for name, text, value, extra in _samples(record):
            labels = ",".join(f'{k}="{_label(v)}"' for k, v in {**base, **extra}.items())
            families.setdefault(name, (text, []))[1].append(f"{name}{{{labels}}} {value!r}")
    lines: list[str] = []
    for name, (text, samples) in families.items():
        lines += [f"# TYPE {name} gauge", f"# HELP {name} {text}", *samples]
    return "\n".join([*lines, "# EOF"]) + "\n"


def write_ci_files(folder: Path, records: Sequence[BenchmarkRecord], reproduce: str = "") -> dict[str, Path]:
    """Write both files into ``folder``; append the summary to ``$GITHUB_STEP_SUMMARY`` when
    it is set. Returns what was written, by what it is."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    summary = markdown_summary(records, reproduce)
    written = {"summary": folder / SUMMARY_FILE, "metrics": folder / METRICS_FILE}
    written["summary"].write_text(summary, encoding="utf-8")
    written["metrics"].write_text(openmetrics(records), encoding="utf-8")
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as f:
            f.write(summary)
        written["GitHub step summary"] = Path(step_summary)
    return written
