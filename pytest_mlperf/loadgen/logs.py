"""Readers for loadgen's ``mlperf_log_detail.txt`` and ``mlperf_log_summary.txt``.

The detail log is the authority: ``:::MLLOG {json}`` lines, the first occurrence of a key wins
(the same key may be logged again by a later run appended to the file). The summary is read
only for what older loadgens do not put in the detail log. Both readers accept CRLF files and
the wording of loadgen 4.0 to 6.x.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_MLLOG = ":::MLLOG "


class LogError(ValueError):
    """A loadgen log that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class DetailLog:
    """The key/value pairs of a detail log (first occurrence wins) and its error entries."""

    path: Path
    values: dict[str, Any]
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def read_detail(path: str | Path) -> DetailLog:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise LogError(f"{path}: cannot read loadgen detail log ({exc.strerror})") from exc
    values: dict[str, Any] = {}
    errors: list[str] = []
    warnings: list[str] = []
    for line_no, line in enumerate(text.splitlines(), 1):
        start = line.find(_MLLOG)
        if start < 0:
            continue
        try:
            entry = json.loads(line[start + len(_MLLOG) :])
        except json.JSONDecodeError:
            # loadgen can interleave a truncated line when a process dies mid-write; one bad
            # line must not hide the results that precede it.
            continue
        if not isinstance(entry, dict) or "key" not in entry:
            raise LogError(f"{path}:{line_no}: MLLOG entry without a 'key'")
        key = entry["key"]
        meta = entry.get("metadata") or {}
        if meta.get("is_error"):
            errors.append(f"{key}: {entry.get('value')}")
        elif meta.get("is_warning"):
            warnings.append(f"{key}: {entry.get('value')}")
        values.setdefault(key, entry.get("value"))
    if not values:
        raise LogError(f"{path}: no ':::MLLOG' entries: not a loadgen detail log")
    return DetailLog(path=path, values=values, errors=tuple(errors), warnings=tuple(warnings))


_SUMMARY_LINE = re.compile(r"^\s*([^:*][^:]*?)\s*:\s*(.*?)\s*$")


@dataclass(frozen=True)
class SummaryLog:
    """``key : value`` lines of a summary log, keys lower-cased with single spaces."""

    path: Path
    values: dict[str, str] = field(default_factory=dict)
    recommendations: tuple[str, ...] = ()

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.values.get(key.lower(), default)

    def number(self, *keys: str) -> float | None:
        """The first of ``keys`` present, as a number (wording differs across versions)."""
        for key in keys:
            raw = self.get(key)
            if raw is not None:
                try:
                    return float(raw)
                except ValueError:
                    continue
        return None


def read_summary(path: str | Path) -> SummaryLog:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise LogError(f"{path}: cannot read loadgen summary log ({exc.strerror})") from exc
    if "MLPerf Results Summary" not in text:
        raise LogError(f"{path}: no 'MLPerf Results Summary' header: not a loadgen summary log")
    values: dict[str, str] = {}
    recommendations: list[str] = []
    in_recommendations = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("Recommendations:"):
            in_recommendations = True
            continue
        if in_recommendations:
            if stripped.startswith("* "):
                recommendations.append(stripped[2:])
                continue
            in_recommendations = False
        m = _SUMMARY_LINE.match(line)
        if m:
            key = " ".join(m.group(1).lower().split())
            values.setdefault(key, m.group(2))
    return SummaryLog(path=path, values=values, recommendations=tuple(recommendations))
