"""pytest-html integration: each benchmark's figures in its row, read from its record.
Registered only when pytest-html is active; the report itself is built on the controller."""

from __future__ import annotations

import html
import json
from typing import Any

from pytest_mlperf.benchmark import relative
from pytest_mlperf.record import BenchmarkRecord, from_report

COLUMNS = ("Validity", "Tokens/s", "ROUGE-1", "Logs")


def _cells(record: BenchmarkRecord | None) -> list[str]:
    if record is None:
        return ["<td></td>"] * len(COLUMNS)
    tps = record.figures.tokens_per_second
    rouge1 = record.accuracy.rouge1 if record.accuracy is not None else None
    values = [
        record.run.validity or "",
        "" if tps is None else f"{tps:.1f}",
        "" if rouge1 is None else f"{rouge1:.4f}",
        relative(record.run.outdir),
    ]
    return [f"<td>{html.escape(str(v))}</td>" for v in values]


class HtmlReport:
    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        cells[2:2] = [f'<th class="sortable">{c}</th>' for c in COLUMNS]

    def pytest_html_results_table_row(self, report: Any, cells: list[str]) -> None:
        cells[2:2] = _cells(from_report(report))

    def pytest_html_results_table_html(self, report: Any, data: list[str]) -> None:
        record = from_report(report)
        if record is not None:
            text = json.dumps(record.to_json(), indent=2)
            data.append(f"<pre>MLPerf record:\n{html.escape(text)}</pre>")
