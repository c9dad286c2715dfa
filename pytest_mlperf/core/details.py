"""What one benchmark run shows beyond its record: the run over time, per-query TTFT/TPOT,
a few scored samples, and the settings it applied over mlperf.conf (its user.conf).

The :class:`~pytest_mlperf.core.record.BenchmarkRecord` is the account of a test (every figure
loadgen reported, the verdict); :class:`RunDetails` is what the HTML page and the submission
tree draw from besides. It is made where the benchmark ran and rides in the test report as one
JSON-able attribute (``report.mlperf_details``), so it crosses xdist like the record does,
but stays out of JUnit XML and the results JSON, which hold measured records only.

A leaf module: it imports nothing of the package and nothing heavy.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: the report attribute the details ride in
ATTRIBUTE = "mlperf_details"


@dataclass(frozen=True)
class Histogram:
    """Counts of values in ``edges[i] <= v < edges[i+1]`` (the last bin is closed)."""

    edges: tuple[float, ...] = ()
    counts: tuple[int, ...] = ()
    count: int = 0
    p50: float | None = None
    p99: float | None = None

    @classmethod
    def of(cls, values: Sequence[float], bins: int = 40) -> Histogram | None:
        if not values:
            return None
        ordered = sorted(values)
        low, high = ordered[0], ordered[-1]
        if high <= low:
            high = low + (abs(low) * 1e-3 or 1e-3)
        width = (high - low) / bins
        counts = [0] * bins
        for value in ordered:
            counts[min(int((value - low) / width), bins - 1)] += 1
        return cls(edges=tuple(round(low + i * width, 6) for i in range(bins + 1)),
                   counts=tuple(counts), count=len(ordered),
                   p50=percentile(ordered, 50), p99=percentile(ordered, 99))


def percentile(ordered: Sequence[float], pct: float) -> float | None:
    """The nearest-rank percentile of sorted values."""
    if not ordered:
        return None
    rank = max(0, min(len(ordered) - 1, math.ceil(pct / 100.0 * len(ordered)) - 1))
    return ordered[rank]


@dataclass(frozen=True)
class Sample:
    """One scored accuracy sample: the article's start, what the model wrote, the reference,
    and its ROUGE F-measures x 100."""

    qsl_idx: int
    prompt: str
    prediction: str
    reference: str
    rouge1: float
    rouge2: float
    rougeL: float  # noqa: N815 - the metric's name
    rougeLsum: float  # noqa: N815 - the metric's name


@dataclass(frozen=True)
class RunDetails:
    #: (elapsed s, issued, completed, output tokens) about once a second, from the bridge
    timeline: tuple[tuple[float, int, int, int], ...] = ()
    #: per-query time to first token / per output token, in ms, as the bridge timed them
    ttft_ms: Histogram | None = None
    tpot_ms: Histogram | None = None
    samples: tuple[Sample, ...] = ()
    #: the settings this run applied over loadgen's mlperf.conf, as user.conf lines
    user_conf: str = ""
    status_file: str = ""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> RunDetails | None:
        if not isinstance(data, dict):
            return None
        try:
            hist = {k: Histogram(**{**data[k], "edges": tuple(data[k]["edges"]),
                                    "counts": tuple(data[k]["counts"])})
                    for k in ("ttft_ms", "tpot_ms") if data.get(k)}
            return cls(
                timeline=tuple(tuple(row) for row in data.get("timeline", ())),  # type: ignore[misc]
                ttft_ms=hist.get("ttft_ms"), tpot_ms=hist.get("tpot_ms"),
                samples=tuple(Sample(**s) for s in data.get("samples", ())),
                user_conf=str(data.get("user_conf", "")),
                status_file=str(data.get("status_file", "")),
            )
        except (KeyError, TypeError):
            return None


def attach(report: Any, details: RunDetails) -> None:
    setattr(report, ATTRIBUTE, details.to_json())


def from_report(report: Any) -> RunDetails | None:
    return RunDetails.from_json(getattr(report, ATTRIBUTE, None))
