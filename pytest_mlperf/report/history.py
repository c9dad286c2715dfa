"""The stored sessions as a history: a list per machine, any two side by side, each figure's
trend over the sessions (an HTML page of SVG charts: no matplotlib, opens anywhere).

Read by ``python -m pytest_mlperf.history`` and by the pytest-html panel (a test's recent
trend). Reads stored sessions only (:mod:`pytest_mlperf.gate.storage`).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_mlperf.core.record import BenchmarkRecord
from pytest_mlperf.gate import storage
from pytest_mlperf.gate.compare import FIGURES

#: the figures a trend page draws, in this order, when the records have them
TREND_FIGURES = ("tokens_per_second", "ttft_p99_ms", "tpot_p99_ms", "latency_p99_ms", "rouge1", "rougeLsum")


def machines(root: Path) -> dict[str, list[storage.StoredSession]]:
    """Machine id -> its stored sessions, oldest first (unreadable files left out)."""
    out: dict[str, list[storage.StoredSession]] = {}
    if not root.is_dir():
        return out
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        found = []
        for _, path in storage.sessions(folder):
            try:
                found.append(storage.load(path))
            except storage.StorageError:
                continue
        if found:
            out[folder.name] = found
    return out


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.rjust(w) if i and c[:1].isdigit() else c.ljust(w)
                      for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip() for row in rows]


def list_lines(root: Path) -> list[str]:
    found = machines(root)
    if not found:
        return [f"no stored sessions in {root} (pytest --mlperf-save --mlperf-storage={root})"]
    lines = []
    for machine, sessions in found.items():
        lines.append(f"{machine} ({len(sessions)} sessions)")
        rows = [("no", "file", "saved", "commit", "tests", "passed")]
        for s in sessions:
            passed = sum(r.verdict.passed for r in s.records)
            rows.append((str(s.number), s.path.name, s.saved, (s.commit or "-")[:12], str(len(s.records)),
                         str(passed)))
        lines += ["  " + line for line in _table(rows)]
        lines.append("")
    return lines


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def compare_lines(old: storage.StoredSession, new: storage.StoredSession) -> list[str]:
    """pytest-benchmark's ``compare``: per test, every figure of both sessions, the ratio and
    the change (new against old)."""
    from pytest_mlperf.gate.compare import match

    lines = [f"old: {old.label} (saved {old.saved}, commit {old.commit or '-'})",
             f"new: {new.label} (saved {new.saved}, commit {new.commit or '-'})", ""]
    for record in sorted(new.records, key=lambda r: r.nodeid):
        before = match(old.records, record)
        lines.append(record.nodeid)
        if before is None:
            lines += ["  not in the old session", ""]
            continue
        rows = [("figure", "old", "new", "ratio", "change")]
        for figure in FIGURES.values():
            a, b = figure.get(before), figure.get(record)
            if a is None and b is None:
                continue
            ratio = b / a if a and b is not None else None
            change = "" if ratio is None else f"{100 * (ratio - 1):+.1f}%"
            worse = ratio is not None and (ratio - 1) * figure.better < 0
            rows.append((figure.name, _num(a), _num(b), "-" if ratio is None else f"{ratio:.3f}",
                         change + (" worse" if worse and abs(ratio - 1) >= 0.005 else "")))
        lines += ["  " + line for line in _table(rows)] + [""]
    return lines


@dataclass(frozen=True)
class Point:
    session: int
    commit: str
    value: float


def series(sessions: Sequence[storage.StoredSession], nodeid: str, figure: str) -> list[Point]:
    get = FIGURES[figure].get
    points = []
    for s in sessions:
        for r in s.records:
            if r.nodeid == nodeid and get(r) is not None:
                points.append(Point(s.number, (s.commit or "-")[:12], float(get(r))))  # type: ignore[arg-type]
    return points


def svg(points: Sequence[Point], band: float | None, width: int = 560, height: int = 160,
        today: float | None = None) -> str:
    """A line over the sessions; the band of +-``band`` % around the first point's value shaded;
    a dashed line where the commit changed; ``today`` (a session not stored yet) as a ring."""
    values = [p.value for p in points] + ([today] if today is not None else [])
    if not values:
        return ""
    lo, hi = min(values), max(values)
    if band:
        base = points[0].value if points else values[0]
        lo, hi = min(lo, base * (1 - band / 100)), max(hi, base * (1 + band / 100))
    span = (hi - lo) or abs(hi) or 1.0
    lo, hi = lo - 0.05 * span, hi + 0.05 * span
    n = len(values)
    pad = 40

    def x(i: int) -> float:
        return pad + (width - 2 * pad) * (i / (n - 1) if n > 1 else 0.5)

    def y(v: float) -> float:
        return height - 20 - (height - 40) * (v - lo) / (hi - lo)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" class="mlperf-trend">']
    if band and points:
        base = points[0].value
        top, bottom = y(base * (1 + band / 100)), y(base * (1 - band / 100))
        parts.append(f'<rect x="{pad}" y="{top:.1f}" width="{width - 2 * pad}" height="{bottom - top:.1f}" '
                     f'fill="#1a7f37" fill-opacity="0.12"><title>gate band +-{band:g}%</title></rect>')
    for i in range(1, len(points)):
        if points[i].commit != points[i - 1].commit:
            parts.append(f'<line x1="{x(i):.1f}" x2="{x(i):.1f}" y1="10" y2="{height - 20}" stroke="#888" '
                         f'stroke-dasharray="3,3"><title>commit {html.escape(points[i].commit)}</title></line>')
    path = " ".join(f"{x(i):.1f},{y(p.value):.1f}" for i, p in enumerate(points))
    parts.append(f'<polyline fill="none" stroke="#0969da" stroke-width="2" points="{path}"/>')
    for i, p in enumerate(points):
        parts.append(f'<circle cx="{x(i):.1f}" cy="{y(p.value):.1f}" r="3" fill="#0969da">'
                     f"<title>session {p.session} ({html.escape(p.commit)}): {_num(p.value)}</title></circle>")
    if today is not None:
        parts.append(f'<circle cx="{x(n - 1):.1f}" cy="{y(today):.1f}" r="5" fill="none" stroke="#cf222e" '
                     f'stroke-width="2"><title>this session: {_num(today)}</title></circle>')
    parts.append(f'<text x="2" y="14" font-size="11">{_num(hi)}</text>'
                 f'<text x="2" y="{height - 22}" font-size="11">{_num(lo)}</text></svg>')
    return "".join(parts)


def trend_page(root: Path, band: float | None = 5.0) -> str:
    """One section per machine, per test, per figure: its value over the stored sessions."""
    body = [f"<h1>pytest-mlperf history: {html.escape(str(root))}</h1>"]
    for machine, sessions in machines(root).items():
        body.append(f"<h2>{html.escape(machine)} ({len(sessions)} sessions)</h2>")
        nodeids = sorted({r.nodeid for s in sessions for r in s.records})
        for nodeid in nodeids:
            body.append(f"<h3>{html.escape(nodeid)}</h3>")
            for figure in TREND_FIGURES:
                points = series(sessions, nodeid, figure)
                if len(points) >= 1:
                    unit = FIGURES[figure].unit
                    body.append(f'<div class="figure"><h4>{figure} {html.escape(unit)}</h4>'
                                f"{svg(points, band)}</div>")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>pytest-mlperf history</title>"
            "<style>body{font-family:sans-serif} .figure{display:inline-block;margin:4px 12px}"
            "h4{margin:2px 0}</style></head><body>" + "".join(body) + "</body></html>\n")


def recent(root: Path, machine: str, record: BenchmarkRecord, figure: str,
           last: int = 10) -> list[Point]:
    """The test's last ``last`` stored values of ``figure`` on ``machine`` (for the HTML panel)."""
    folder = root / machine
    found = []
    for _, path in storage.sessions(folder)[-last:]:
        try:
            found.append(storage.load(path))
        except storage.StorageError:
            continue
    return series(found, record.nodeid, figure)
