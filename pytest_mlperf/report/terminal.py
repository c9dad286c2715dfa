"""The terminal summary: how to reproduce the session, a table of every benchmark test that fits
120 columns, and why each failed one failed. Read from the records only."""

from __future__ import annotations

import os
import shlex
import textwrap
from collections.abc import Iterable, Sequence
from typing import Any

import pytest

from pytest_mlperf.core.record import BenchmarkRecord
from pytest_mlperf.run.benchmark import relative

WIDTH = 120
ROUGE = ("rouge1", "rouge2", "rougeL", "rougeLsum")
#: (key, heading, right-aligned)
COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("benchmark", "benchmark", False),
    ("scenario", "scenario", False),
    ("mode", "mode", False),
    ("verdict", "verdict", False),
    ("tokens_per_second", "tokens/s", True),
    ("samples_per_second", "samples/s", True),
    ("ttft_p99", "p99 TTFT", True),
    ("tpot_p99", "p99 TPOT", True),
    ("rouge", "ROUGE-1/2/L/Lsum %", False),
)
_SHORT_MODE = {"performance": "perf", "accuracy": "acc"}
GAP = "  "


def fmt_rate(value: float | None, decimals: int | None = None) -> str:
    """A rate: ``decimals`` when given; else 2 below 100, 1 below 100,000, none above."""
    if value is None:
        return "-"
    if decimals is None:
        decimals = 2 if value < 100 else 1 if value < 100_000 else 0
    return f"{value:,.{decimals}f}"


def fmt_ms(ns: float | None) -> str:
    """A latency from nanoseconds: ``0.05 ms``, ``95.2 ms``, ``12.3 s`` (from 10 s up)."""
    if ns is None:
        return "-"
    ms = ns / 1e6
    if ms >= 10_000:
        return f"{ms / 1000:,.1f} s"
    return f"{ms:,.2f} ms" if ms < 10 else f"{ms:,.1f} ms"


def rouge_percents(record: BenchmarkRecord) -> list[float | None]:
    acc = record.accuracy
    if acc is None or not acc.scored:
        return []
    return [acc.percent_of_target(key) for key in ROUGE]


def short_reason(record: BenchmarkRecord) -> str:
    """The first reason a failed test failed, without the words the column already says."""
    if not record.verdict.reasons:
        return ""
    reason = record.verdict.reasons[0]
    for prefix, keep in (("loadgen says ", ""), ("engine failed: ", "engine failed: ")):
        if reason.startswith(prefix):
            reason = keep + reason[len(prefix):]
    if reason.startswith("accuracy below baseline"):
        reason = reason.partition(": ")[2] or reason
    return reason.split(" (logs kept in ")[0]


def verdict_cell(record: BenchmarkRecord) -> str:
    word = "PASS" if record.verdict.passed else "FAIL"
    validity = record.run.validity if record.mode == "performance" else None
    if record.verdict.passed:
        return f"{word} {validity}" if validity else word
    why = short_reason(record)
    if validity == "VALID":
        why = f"VALID, {why}"
    return f"{word} {why}".rstrip()


def cells(record: BenchmarkRecord) -> dict[str, str]:
    """The table's cells for one record (the results JSON holds every figure shown here)."""
    figures = record.figures
    percents = rouge_percents(record)
    return {
        "benchmark": record.benchmark,
        "scenario": record.scenario,
        "mode": _SHORT_MODE.get(record.mode, record.mode),
        "verdict": verdict_cell(record),
        "tokens_per_second": fmt_rate(figures.tokens_per_second),
        "samples_per_second": fmt_rate(figures.samples_per_second),
        "ttft_p99": fmt_ms(figures.ttft_ns.p99),
        "tpot_p99": fmt_ms(figures.tpot_ns.p99),
        "rouge": " ".join("-" if p is None else f"{p:.1f}" for p in percents) or "-",
    }


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _elide_middle(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    keep = width - 1
    return text[: keep // 2] + "…" + text[len(text) - (keep - keep // 2):]


def table_lines(records: Sequence[BenchmarkRecord], width: int = WIDTH) -> list[str]:
    """A header and two lines per test (its figures; its run folder below them), every line
    at most ``width`` columns: the verdict column takes what the others leave."""
    rows = [cells(r) for r in records]
    widths = {key: max([len(head)] + [len(row[key]) for row in rows]) for key, head, _ in COLUMNS}
    others = sum(w for k, w in widths.items() if k != "verdict") + len(GAP) * (len(COLUMNS) - 1)
    widths["verdict"] = max(len("verdict"), min(widths["verdict"], width - others))

    def line(values: dict[str, str]) -> str:
        parts = []
        for key, _, right in COLUMNS:
            text = _fit(values[key], widths[key])
            parts.append(text.rjust(widths[key]) if right else text.ljust(widths[key]))
        return GAP.join(parts).rstrip()[:width]

    out = [line({key: head for key, head, _ in COLUMNS})]
    for record, row in zip(records, rows, strict=True):
        out.append(line(row))
        out.append(_elide_middle("  └ " + relative(record.run.outdir), width))
        conformance = conformance_text(record)
        if conformance:
            out.append(_fit("    " + conformance, width))
    return out


def conformance_text(record: BenchmarkRecord) -> str:
    """``MLPerf result`` or ``not MLPerf: <every reason>`` ("" for a record stored before the
    plugin judged conformance)."""
    c = record.conformance
    if not c.checked:
        return ""
    return "MLPerf result" if c.mlperf else "not MLPerf: " + "; ".join(c.reasons)


def failure_lines(records: Iterable[BenchmarkRecord], width: int = WIDTH) -> list[str]:
    """``FAIL <benchmark> <scenario> <mode> (<validity>):`` then every reason, indented."""
    out = []
    for record in records:
        if record.verdict.passed:
            continue
        validity = f" ({record.run.validity})" if record.run.validity else ""
        out += textwrap.wrap(f"FAIL {record.benchmark} {record.scenario} {record.mode}{validity}: {record.nodeid}",
                             width, subsequent_indent="  ", break_on_hyphens=False)
        for reason in record.verdict.reasons:
            out += textwrap.wrap(reason, width, initial_indent="    ", subsequent_indent="      ",
                                 break_long_words=True, break_on_hyphens=False)
    return out


def context_line(records: Sequence[BenchmarkRecord]) -> str:
    first = records[0]
    backends = sorted({r.system.backend for r in records})
    profiles = sorted({r.profile for r in records})
    samples = sorted({r.dataset.samples for r in records})
    checked = [r for r in records if r.conformance.checked]
    mlperf = f", MLPerf: {sum(r.conformance.mlperf for r in checked)} of {len(checked)} runs" if checked else ""
    return (f"{', '.join(profiles)} profile, backend {', '.join(backends)}, "
            f"{'/'.join(map(str, samples))} samples{mlperf}, model {first.system.model}")


def reproduce_command(config: Any) -> str:
    """The command that runs these benchmarks again with the same choices."""
    from pytest_mlperf.core import stash

    args = []
    if getattr(config, "args_source", None) == pytest.Config.ArgsSource.ARGS:
        # the paths and node ids given, as the user's shell would find them from here
        for arg in config.args:
            path, sep, rest = arg.partition("::")
            rel = os.path.relpath(path) if os.path.isabs(path) else path
            args.append((path if rel.startswith("..") else rel) + sep + rest)
    return " ".join(["pytest", *map(shlex.quote, args), *selection_flags(config),
                     config.stash[stash.OPTIONS].reproduce_flags()])


def selection_flags(config: Any) -> list[str]:
    """What picked and spread the tests beyond the paths: ``-k``, ``-m``, xdist's ``-n`` and
    ``--dist``, pytest-timeout's ``--timeout``."""
    option = config.option
    flags = [f"{flag} {shlex.quote(value)}" for flag, value in
             (("-k", getattr(option, "keyword", "")), ("-m", getattr(option, "markexpr", ""))) if value]
    workers = getattr(option, "numprocesses", None)
    if workers:
        flags.append(f"-n {workers}")
        dist = getattr(option, "dist", "no")
        if dist not in ("no", "load"):
            flags.append(f"--dist={dist}")
    timeout = getattr(option, "timeout", None)
    if timeout:
        flags.append(f"--timeout={timeout}")
    return flags


def shell_lines(command: str, width: int = WIDTH) -> list[str]:
    """A long command cut at spaces into lines ending in `` \\``, so it still pastes."""
    lines = textwrap.wrap(command, width - 2, subsequent_indent="    ", break_long_words=False,
                          break_on_hyphens=False)
    return [line + " \\" for line in lines[:-1]] + lines[-1:]


def summary_lines(records: Iterable[BenchmarkRecord], config: Any = None, width: int = WIDTH) -> list[str]:
    ordered = sorted(records, key=lambda r: r.nodeid)
    if not ordered:
        return []
    out = []
    if config is not None:
        out += shell_lines("reproduce: " + reproduce_command(config), width)
    out.append(_fit(context_line(ordered), width))
    out += table_lines(ordered, width)
    failures = failure_lines(ordered, width)
    if failures:
        out += ["", *failures]
    return out


def write_summary(terminalreporter: Any, config: Any, records: Sequence[BenchmarkRecord]) -> None:
    terminalreporter.section("MLPerf results")
    for line in summary_lines(records, config):
        terminalreporter.write_line(line)
