"""pytest-html: sortable figure columns, a panel per benchmark (figures, plots, system, loadgen
summary, links to the kept logs, scored samples), a summary table and Environment entries.

Registered only when pytest-html is active, on the controller, which builds the page; it reads
the records and the run details the reports carry (xdist or not). Every text that comes from
a run (model output, references, reasons, loadgen's summary) is escaped.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pytest_mlperf.core import details as run_details
from pytest_mlperf.core.record import BenchmarkRecord, Distribution, from_report
from pytest_mlperf.report import terminal

#: (column type, heading) of the sortable columns; their cells carry a hidden sort key
SORTABLE = (("validity", "Validity"), ("tokens", "Tokens/s"), ("ttft", "p99 TTFT ms"),
            ("tpot", "p99 TPOT ms"), ("rouge", "ROUGE % of target"), ("gates", "vs stored"))
LOGS = ("mlperf_logs", "Logs")
_DIST_STATS = (("min", "min"), ("mean", "mean"), ("p50", "p50"), ("p90", "p90"), ("p95", "p95"),
               ("p97", "p97"), ("p99", "p99"), ("p999", "p99.9"), ("max", "max"))
_FILES = ("mlperf_log_summary.txt", "mlperf_log_detail.txt", "mlperf_log_accuracy.json", "accuracy.txt")
#: the Environment table's entries, from the system of the first record
STYLE = """<style>
.mlperf table { border-collapse: collapse; margin: 6px 0 10px 0; }
.mlperf th, .mlperf td { border: 1px solid #ccc; padding: 2px 8px; text-align: right; vertical-align: top; }
.mlperf th:first-child, .mlperf td:first-child, .mlperf td.text { text-align: left; }
.mlperf h4 { margin: 10px 0 4px 0; }
.mlperf .pass { color: #1a7f37; font-weight: bold; } .mlperf .fail { color: #cf222e; font-weight: bold; }
.mlperf img.mlperf-plot { display: block; max-width: 100%; margin: 6px 0; border: 1px solid #ddd; }
.mlperf pre { white-space: pre-wrap; max-height: 30em; overflow: auto; background: #f6f8fa; padding: 6px; }
.mlperf td.sample { text-align: left; white-space: pre-wrap; max-width: 32em; font-size: 90%; }
</style>"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _sort_key(value: float | None) -> str:
    return "" if value is None else f"{value:024.6f}" if value >= 0 else f"-{-value:023.6f}"


def _sortable(column: str, value: float | str | None, shown: str) -> str:
    key = value if isinstance(value, str) else _sort_key(value)
    return f'<td class="col-{column}"><span hidden>{esc(key)}</span>{esc(shown)}</td>'


def _ms(dist: Distribution) -> float | None:
    return dist.ms("p99")


def _min_rouge_percent(record: BenchmarkRecord) -> float | None:
    values = [p for p in terminal.rouge_percents(record) if p is not None]
    return min(values) if values else None


class HtmlReport:
    def __init__(self, config: Any) -> None:
        self._config = config
        self._environment_done = False
        self._html_report: Any = None  # pytest-html's report object, for the title

    # -- where links point from ---------------------------------------------------------------
    def _report_dir(self) -> Path:
        path = getattr(self._config.option, "htmlpath", None) or "report.html"
        return (Path.cwd() / Path(os.path.expandvars(path)).expanduser()).parent

    def href(self, path: str | Path) -> str:
        rel = os.path.relpath(Path(path).resolve(), self._report_dir().resolve())
        return quote(Path(rel).as_posix())

    # -- the results table ---------------------------------------------------------------------
    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        heads = [f'<th class="sortable" data-column-type="{c}">{esc(h)}</th>' for c, h in SORTABLE]
        heads.append(f'<th class="{LOGS[0]}">{LOGS[1]}</th>')
        cells[2:2] = heads

    def pytest_html_results_table_row(self, report: Any, cells: list[str]) -> None:
        cells[2:2] = self.row_cells(from_report(report))

    def row_cells(self, record: BenchmarkRecord | None) -> list[str]:
        if record is None:
            return [f'<td class="col-{c}"></td>' for c, _ in SORTABLE] + [f'<td class="col-{LOGS[0]}"></td>']
        figures = record.figures
        rouge = _min_rouge_percent(record)
        return [
            _sortable("validity", record.run.validity or "", record.run.validity or ""),
            _sortable("tokens", figures.tokens_per_second, terminal.fmt_rate(figures.tokens_per_second, 1)),
            _sortable("ttft", _ms(figures.ttft_ns), terminal.fmt_rate(_ms(figures.ttft_ns), 1)),
            _sortable("tpot", _ms(figures.tpot_ns), terminal.fmt_rate(_ms(figures.tpot_ns), 2)),
            _sortable("rouge", rouge, "-" if rouge is None else f"{rouge:.1f} (min)"),
            self._gates_cell(record),
            f'<td class="col-{LOGS[0]}"><a href="{self.href(record.run.outdir)}">'
            f"{esc(Path(record.run.outdir).parent.name + '/' + Path(record.run.outdir).name)}</a></td>",
        ]


    def pytest_html_report_title(self, report: Any) -> None:
        """The page names the benchmark session, not the file (asked at session start; the
        benchmarks are added once they ran, in :meth:`pytest_html_results_summary`)."""
        self._html_report = report
        self._title(report)

    def _title(self, report: Any) -> None:
        from pytest_mlperf.core import stash
        from pytest_mlperf.live.progress import SESSION

        info = self._config.stash.get(SESSION, None)
        records = self._config.stash.get(stash.RECORDS, [])
        runs: dict[str, list[str]] = {}
        for record in records:
            scenarios = runs.setdefault(record.benchmark, [])
            if record.scenario not in scenarios:
                scenarios.append(record.scenario)
        what = "; ".join(f"{b} {', '.join(s)}" for b, s in sorted(runs.items())) or "benchmarks"
        report.title = f"pytest-mlperf: {what}" + (f" (session {info.id})" if info is not None else "")

    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str],
                                    session: Any) -> None:
        from pytest_mlperf.core import stash

        records = sorted(self._config.stash.get(stash.RECORDS, []), key=lambda r: r.nodeid)
        if self._html_report is not None:
            self._title(self._html_report)
        if records:
            prefix.append(STYLE + self.summary_table(records))

    def pytest_runtest_logreport(self, report: Any) -> None:
        """The benchmark's panel joins the report's extras (pytest-html draws them in the
        row's details, above the captured log) before pytest-html reads them at teardown."""
        if report.when != "call":
            return
        record = from_report(report)
        if record is None:
            return
        panel = {"name": "MLPerf", "format_type": "html", "content": self.panel(record, run_details.from_report(report)),
                 "mime_type": None, "extension": None}
        report.extras = [*getattr(report, "extras", []), panel]
        if not self._environment_done:
            self._environment_done = True
            add_environment(self._config, record)

    # -- pieces ------------------------------------------------------------------------------
    def summary_table(self, records: Sequence[BenchmarkRecord]) -> str:
        heads = "".join(f"<th>{esc(h)}</th>" for _, h, _ in terminal.COLUMNS) + "<th>logs</th>"
        rows = []
        for record in records:
            row = terminal.cells(record)
            cls = "pass" if record.verdict.passed else "fail"
            tds = "".join(
                f'<td class="{"text " if not right else ""}{cls if key == "verdict" else ""}">{esc(row[key])}</td>'
                for key, _, right in terminal.COLUMNS)
            link = f'<td class="text"><a href="{self.href(record.run.outdir)}">{esc(terminal.relative(record.run.outdir))}</a></td>'
            rows.append(f"<tr>{tds}{link}</tr>")
        passed = sum(r.verdict.passed for r in records)
        return (f'<div class="mlperf"><h4>MLPerf: {passed} of {len(records)} benchmark tests passed '
                f"({esc(terminal.context_line(records))})</h4>"
                f"<table><tr>{heads}</tr>{''.join(rows)}</table></div>")

    @staticmethod
    def _gates_cell(record: BenchmarkRecord) -> str:
        """The gates against the stored run: failed ones first, each as figure x ratio; sorted by
        the worst ratio."""
        if not record.gates:
            return _sortable("gates", None, "-")
        gates = sorted(record.gates, key=lambda g: g.passed)
        shown = ", ".join(f"{'REGRESSED ' if not g.passed else ''}{g.name} x{g.ratio:.3f}"
                          if g.ratio is not None else g.name for g in gates)
        ratios = [g.ratio for g in gates if g.ratio is not None]
        return _sortable("gates", min(ratios) if ratios else None, shown)

    def _comparison(self, record: BenchmarkRecord) -> str:
        if not record.gates:
            return ""
        head = "<tr>" + "".join(f"<th>{h}</th>" for h in ("figure", "stored", "now", "ratio", "bound",
                                                          "limit", "result")) + "</tr>"
        rows = []
        for g in record.gates:
            cls, word = ("pass", "ok") if g.passed else ("fail", "REGRESSED")
            rows.append(f"<tr><td>{esc(g.name)}</td><td>{_num(g.stored)}</td><td>{_num(g.value)}</td>"
                        f"<td>{_num(g.ratio)}</td><td>{esc(g.bound)} ({esc(g.method)})</td>"
                        f'<td>{_num(g.limit)}</td><td class="text"><span class="{cls}">{word}</span></td></tr>')
        return (f"<h4>Against the stored run ({esc(record.compared_with)})</h4>"
                f'<table class="mlperf-gates">{head}{"".join(rows)}</table>')

    def _trend(self, record: BenchmarkRecord) -> str:
        """This test's figure over the last stored sessions of this machine, today as a ring."""
        from pytest_mlperf.core import stash
        from pytest_mlperf.gate.compare import FIGURES
        from pytest_mlperf.gate.storage import machine_id
        from pytest_mlperf.report.history import recent, svg

        opts = self._config.stash[stash.OPTIONS]
        figure = "tokens_per_second" if record.mode == "performance" else "rouge1"
        try:
            points = recent(opts.storage, machine_id(record.system.device), record, figure)
        except OSError:
            return ""
        today = FIGURES[figure].get(record)
        if not points or today is None:
            return ""
        band = next((b.amount for b in opts.compare_fail if b.figure.name == figure and b.relative), None)
        return (f"<h4>Recent trend: {figure} over the last {len(points)} stored sessions, this one "
                f"circled in red</h4>" + svg(points, band, today=today))

    def panel(self, record: BenchmarkRecord, details: run_details.RunDetails | None) -> str:
        from pytest_mlperf.report.plots import plots

        parts = [STYLE, '<div class="mlperf">', self._verdict(record), self._comparison(record),
                 self._trend(record)]
        if record.mode == "performance":
            parts.append(self._performance(record))
        else:
            parts.append(self._accuracy(record))
        made = plots(record, details)
        if made:
            parts.append("<h4>Plots</h4>")
            # data-elements: what each plot drew and where (scripts/check_report.py looks)
            parts += [f'<img class="mlperf-plot" alt="{esc(p.title)}" title="{esc(p.title)}" '
                      f'data-elements="{esc(p.elements_json)}" src="{p.data_uri}">'
                      for p in made]
        if details is not None and details.samples:
            parts.append(self._samples(details))
        parts.append(self._links(record))
        parts.append(self._system(record))
        parts.append(self._loadgen_summary(record))
        parts.append(self._settings(record, details))
        parts.append("</div>")
        return "".join(parts)

    def _verdict(self, record: BenchmarkRecord) -> str:
        cls, word = ("pass", "PASS") if record.verdict.passed else ("fail", "FAIL")
        reasons = "".join(f"<li>{esc(r)}</li>" for r in record.verdict.reasons)
        head = (f'<h4><span class="{cls}">{word}</span> {esc(record.benchmark)} {esc(record.scenario)} '
                f"{esc(record.mode)} ({esc(record.profile)} profile, {record.dataset.samples} samples, "
                f"backend {esc(record.system.backend)})</h4>")
        text = terminal.conformance_text(record)
        mlperf = f'<p class="{"pass" if record.conformance.mlperf else "fail"}">{esc(text)}</p>' if text else ""
        return head + (f"<ul>{reasons}</ul>" if reasons else "") + mlperf

    def _performance(self, record: BenchmarkRecord) -> str:
        f, run = record.figures, record.run
        rows = [("validity", run.validity), ("invalid reason", run.invalid_reason),
                ("tokens/s", terminal.fmt_rate(f.tokens_per_second, 2)),
                ("samples/s", terminal.fmt_rate(f.samples_per_second, 3)),
                ("scheduled samples/s", terminal.fmt_rate(f.scheduled_samples_per_second, 3)),
                ("queries", f.query_count), ("output tokens", run.output_tokens)]
        rows += [(name.replace("_", " "), "yes" if ok else "no") for name, ok in run.flags.items()]
        rows += [("loadgen errors", "; ".join(run.loadgen_errors) or None), ("engine error", run.backend_error)]
        table = _kv_table((k, v) for k, v in rows if v is not None)
        dists = [(label, dist) for label, dist in (("latency", f.latency_ns), ("TTFT", f.ttft_ns),
                                                   ("TPOT", f.tpot_ns)) if not dist.empty]
        if dists:
            head = "<tr><th>ms</th>" + "".join(f"<th>{h}</th>" for _, h in _DIST_STATS) + "</tr>"
            body = "".join(
                f"<tr><td>{label}</td>" + "".join(f"<td>{_num(dist.ms(s))}</td>" for s, _ in _DIST_STATS) + "</tr>"
                for label, dist in dists)
            table += f"<table>{head}{body}</table>"
        return "<h4>Figures (loadgen)</h4>" + table

    def _accuracy(self, record: BenchmarkRecord) -> str:
        acc = record.accuracy
        if acc is None or not acc.scored:
            return "<h4>Accuracy</h4><p>not scored</p>"
        target = acc.target
        head = "<tr><th>metric</th><th>score</th><th>target</th><th>bound</th><th>% of target</th></tr>"
        body = []
        for key in terminal.ROUGE:
            goal = getattr(target, key, None) if target is not None else None
            bound = goal * target.ratio if goal and target is not None else None
            percent = acc.percent_of_target(key)
            body.append(f"<tr><td>{key}</td><td>{_num(getattr(acc, key), 4)}</td><td>{_num(goal, 4)}</td>"
                        f"<td>{_num(bound, 4)}</td><td>{_num(percent, 2)}</td></tr>")
        extra = [("gen_len", acc.gen_len), ("gen_num", acc.gen_num), ("tokens per sample", acc.tokens_per_sample),
                 ("target", f"{target.name} (x {target.ratio:g})" if target is not None else None),
                 ("target gen_len", target.gen_len if target is not None else None),
                 ("official", "yes" if acc.official else "no"), ("note", acc.note)]
        return ("<h4>Accuracy</h4>" + f"<table>{head}{''.join(body)}</table>"
                + _kv_table((k, v) for k, v in extra if v is not None))

    def _samples(self, details: run_details.RunDetails) -> str:
        head = ("<tr><th>sample</th><th>prompt (start)</th><th>prediction</th><th>reference</th>"
                "<th>ROUGE-1/2/L/Lsum</th></tr>")
        rows = "".join(
            f"<tr><td>{s.qsl_idx}</td><td class=\"sample\">{esc(s.prompt)}</td>"
            f"<td class=\"sample\">{esc(s.prediction)}</td><td class=\"sample\">{esc(s.reference)}</td>"
            f"<td>{s.rouge1:.2f} / {s.rouge2:.2f} / {s.rougeL:.2f} / {s.rougeLsum:.2f}</td></tr>"
            for s in details.samples)
        return f"<h4>Samples</h4><table>{head}{rows}</table>"

    def _links(self, record: BenchmarkRecord) -> str:
        folder = Path(record.run.outdir)
        links = [f'<a href="{self.href(folder)}">{esc(terminal.relative(folder))}</a>']
        links += [f'<a href="{self.href(folder / name)}">{esc(name)}</a>'
                  for name in _FILES if (folder / name).is_file()]
        return "<h4>Logs</h4><p>" + " · ".join(links) + "</p>"

    def _system(self, record: BenchmarkRecord) -> str:
        return "<details><summary>System</summary>" + _kv_table(system_entries(record).items()) + "</details>"

    def _loadgen_summary(self, record: BenchmarkRecord) -> str:
        path = Path(record.run.outdir) / "mlperf_log_summary.txt"
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return f"<details><summary>Loadgen summary</summary><pre>{esc(text)}</pre></details>"

    def _settings(self, record: BenchmarkRecord, details: run_details.RunDetails | None) -> str:
        parts = []
        if record.run.settings:
            parts.append(_kv_table(sorted(record.run.settings.items())))
        if details is not None and details.user_conf:
            parts.append(f"<p>As a user.conf over mlperf.conf:</p><pre>{esc(details.user_conf)}</pre>")
        if not parts:
            return ""
        return "<details><summary>Effective loadgen settings</summary>" + "".join(parts) + "</details>"


def _num(value: float | int | None, decimals: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{decimals}f}"


def _kv_table(rows: Iterable[tuple[Any, Any]]) -> str:
    body = "".join(f'<tr><td>{esc(k)}</td><td class="text">{esc(v)}</td></tr>' for k, v in rows)
    return f"<table>{body}</table>" if body else ""


def system_entries(record: BenchmarkRecord) -> dict[str, str]:
    system, device = record.system, record.system.device
    gpus = ", ".join(f"{n} x {name}" for name, n in _count(device.gpus)) or "none"
    out = {
        "backend": system.backend,
        "engine": " ".join(x for x in (system.engine, system.engine_version) if x) or "-",
        "model": system.model,
        "GPUs": gpus,
        "NVIDIA driver": device.driver or "-",
        "CUDA": device.cuda or "-",
        "CPU": f"{device.cpu} ({device.cpu_cores} usable cores)",
        "host": system.host,
        "commit": system.commit or "-",
        "engine arguments": ", ".join(f"{k}={v}" for k, v in sorted(system.engine_args.items())) or "-",
    }
    for name in ("vllm", "torch", "transformers", "mlcommons-loadgen", "pytest-mlperf", "python"):
        if name in system.versions:
            out[name] = system.versions[name]
    return out


def _count(names: Iterable[str]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return list(counts.items())


def add_environment(config: Any, record: BenchmarkRecord) -> None:
    """The system under test in pytest-html's Environment table (pytest-metadata's dict, which
    the page serializes when it is written)."""
    try:
        from pytest_metadata.plugin import metadata_key
    except ImportError:  # pytest-metadata < 3: no environment table to add to
        return
    metadata = config.stash.get(metadata_key, None)
    if metadata is None:
        return
    for key, value in system_entries(record).items():
        if key not in ("host", "engine arguments"):
            metadata[f"MLPerf {key}"] = value
