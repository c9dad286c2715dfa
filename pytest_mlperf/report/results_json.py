"""``--mlperf-json PATH``: every benchmark record of the session in one JSON file.

The records are :meth:`~pytest_mlperf.core.record.BenchmarkRecord.to_json` as they are (system,
versions, effective settings, every figure, accuracy and target, verdict, logs, timings), in
node id order, so a session gives the same file with or without xdist. Read one back with
``BenchmarkRecord.from_json``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pytest_mlperf.core.record import BenchmarkRecord

FORMAT = "pytest-mlperf-results"
FORMAT_VERSION = 1


def results_document(records: Iterable[BenchmarkRecord], *, reproduce: str = "",
                     session: str = "") -> dict[str, Any]:
    ordered = sorted(records, key=lambda r: r.nodeid)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "session": session,
        "reproduce": reproduce,
        "passed": sum(r.verdict.passed for r in ordered),
        "failed": sum(not r.verdict.passed for r in ordered),
        "records": [r.to_json() for r in ordered],
        # every comparison gate of the session, flat: what a dashboard or a bot reads first
        "gates": [{"test": r.nodeid, "against": r.compared_with, **dataclasses.asdict(g)}
                  for r in ordered for g in r.gates],
    }


def write_results_json(path: Path, records: Iterable[BenchmarkRecord], **meta: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results_document(records, **meta), indent=2, sort_keys=True) + "\n",
                    encoding="utf-8")
    return path


def read_results_json(path: Path) -> list[BenchmarkRecord]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file")
    return [BenchmarkRecord.from_json(r) for r in data["records"]]
