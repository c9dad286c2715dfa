"""Plots of one benchmark run, as PNG images, made without a display (matplotlib's Agg canvas,
never pyplot, so no global backend is chosen for anyone else in the process).

- latency, TTFT and TPOT distributions as loadgen reported them (its percentiles);
- TTFT and TPOT of every query, as the harness's bridge timed them (histograms);
- completed tokens/s and queries in flight over the run, from the bridge's progress samples.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_mlperf.core.details import Histogram, RunDetails
from pytest_mlperf.core.record import BenchmarkRecord, Distribution

_PERCENTILES = (("min", "min"), ("p50", "50"), ("p90", "90"), ("p95", "95"), ("p97", "97"),
                ("p99", "99"), ("p999", "99.9"), ("max", "max"))
DPI = 96


@dataclass(frozen=True)
class Plot:
    title: str
    png: bytes

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


def _figure(width: float, height: float):  # type: ignore[no-untyped-def]
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure) -> bytes:  # type: ignore[no-untyped-def]
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def percentile_plot(record: BenchmarkRecord) -> Plot | None:
    figures = record.figures
    panels = [(label, dist) for label, dist in (("query latency", figures.latency_ns),
                                                ("time to first token", figures.ttft_ns),
                                                ("time per output token", figures.tpot_ns))
              if not dist.empty]
    if not panels:
        return None
    figure = _figure(3.2 * len(panels), 2.8)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, (label, dist) in zip(axes, panels, strict=True):
        points = _points(dist)
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", color="#1f77b4")
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("percentile")
        ax.set_ylabel("ms")
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(alpha=0.3)
    figure.suptitle("Latency distributions (loadgen)", fontsize=11)
    return Plot("Latency distributions (loadgen)", _png(figure))


def _points(dist: Distribution) -> list[tuple[str, float]]:
    return [(label, value / 1e6) for stat, label in _PERCENTILES
            if (value := getattr(dist, stat)) is not None]


def histogram_plot(details: RunDetails) -> Plot | None:
    panels = [(label, h) for label, h in (("time to first token", details.ttft_ms),
                                          ("time per output token", details.tpot_ms)) if h is not None]
    if not panels:
        return None
    figure = _figure(4.2 * len(panels), 2.8)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, (label, hist) in zip(axes, panels, strict=True):
        _bars(ax, hist)
        ax.set_title(f"{label} ({hist.count} queries)", fontsize=10)
        ax.set_xlabel("ms")
        ax.set_ylabel("queries")
        ax.grid(alpha=0.3)
    figure.suptitle("Per query, as the harness timed it", fontsize=11)
    return Plot("TTFT and TPOT per query", _png(figure))


def _bars(ax, hist: Histogram) -> None:  # type: ignore[no-untyped-def]
    widths = [b - a for a, b in zip(hist.edges[:-1], hist.edges[1:], strict=True)]
    ax.bar(hist.edges[:-1], hist.counts, width=widths, align="edge", color="#2ca02c", alpha=0.8)
    for value, style in ((hist.p50, ":"), (hist.p99, "--")):
        if value is not None:
            ax.axvline(value, color="#d62728", linestyle=style, linewidth=1)


def timeline_plot(details: RunDetails) -> Plot | None:
    points = details.timeline
    if len(points) < 2:
        return None
    times = [p[0] for p in points]
    rates = [0.0]
    for (t0, _, _, k0), (t1, _, _, k1) in zip(points[:-1], points[1:], strict=True):
        rates.append((k1 - k0) / (t1 - t0) if t1 > t0 else rates[-1])
    in_flight = [p[1] - p[2] for p in points]
    figure = _figure(8.0, 2.8)
    ax = figure.subplots()
    ax.step(times, rates, where="pre", color="#1f77b4", label="completed tokens/s")
    ax.set_xlabel("seconds into the run")
    ax.set_ylabel("tokens/s", color="#1f77b4")
    ax.grid(alpha=0.3)
    other = ax.twinx()
    other.step(times, in_flight, where="post", color="#ff7f0e", label="queries in flight")
    other.set_ylabel("queries in flight", color="#ff7f0e")
    figure.suptitle("Throughput and queries in flight over the run", fontsize=11)
    return Plot("Throughput over the run", _png(figure))


def plots(record: BenchmarkRecord, details: RunDetails | None) -> Sequence[Plot]:
    made = [percentile_plot(record)]
    if details is not None:
        made += [histogram_plot(details), timeline_plot(details)]
    return [p for p in made if p is not None]
