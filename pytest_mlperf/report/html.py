"""pytest-html integration: each benchmark's figures in its row, and its record as an extra.
Registered only when pytest-html is active; the report itself is built on the controller."""

from __future__ import annotations

import html
import json
from typing import Any

COLUMNS = ("Validity", "Tokens/s", "ROUGE-1", "Logs")


def _record(report: Any) -> dict[str, Any] | None:
    for name, value in getattr(report, "user_properties", ()):
        if name == "mlperf":
            return json.loads(value)
    return None


def _cells(record: dict[str, Any] | None) -> list[str]:
    if record is None:
        return ["<td></td>"] * len(COLUMNS)
    run = record["run"]
    tps = run["figures"].get("tokens_per_second")
    rouge1 = record.get("accuracy", {}).get("rouge1")
    values = [
        run["validity"] or "",
        "" if tps is None else f"{tps:.1f}",
        "" if rouge1 is None else f"{rouge1:.4f}",
        run["outdir"],
    ]
    return [f"<td>{html.escape(str(v))}</td>" for v in values]


class HtmlReport:
    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        cells[2:2] = [f'<th class="sortable">{c}</th>' for c in COLUMNS]

    def pytest_html_results_table_row(self, report: Any, cells: list[str]) -> None:
        cells[2:2] = _cells(_record(report))

    def pytest_html_results_table_html(self, report: Any, data: list[str]) -> None:
        record = _record(report)
        if record is not None:
            data.append(f"<pre>MLPerf record:\n{html.escape(json.dumps(record, indent=2))}</pre>")
