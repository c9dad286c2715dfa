"""Plots of one benchmark run, as PNG images, made without a display (matplotlib's Agg canvas,
never pyplot, so no global backend is chosen for anyone else in the process).

- latency, TTFT and TPOT distributions as loadgen reported them (its percentiles), with the
  scenario's TTFT/TPOT limits drawn;
- TTFT and TPOT of every query, as the harness's bridge timed them (histograms, p50/p99 and
  the limits in a legend);
- completed tokens/s over the run in a sliding window, with the run's reported figure as a line,
  and queries in flight, from the bridge's progress samples (an accuracy run's apart, titled
  as such: it is not a performance figure).

Each plot says what it drew (:class:`Element`: a name, a colour, its box in the image's pixels)
so that ``scripts/check_report.py`` can look for each element's colour inside its box in the
image as the browser decoded it.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_mlperf.core.details import Histogram, RunDetails
from pytest_mlperf.core.record import BenchmarkRecord, Distribution

_PERCENTILES = (("min", "min"), ("p50", "50"), ("p90", "90"), ("p95", "95"), ("p97", "97"),
                ("p99", "99"), ("p999", "99.9"), ("max", "max"))
DPI = 96


#: colours of the marks check_report.py looks for (distinct from the data's)
LIMIT_COLOUR, MEAN_COLOUR, P50_COLOUR, P99_COLOUR = "#9400d3", "#d62728", "#ff7f0e", "#8b0000"
#: the sliding window of the throughput plot: this share of the run, at least a second
WINDOW_SHARE, MIN_WINDOW_S = 0.05, 1.0


@dataclass(frozen=True)
class Element:
    """A mark on a plot: ``limit-ttft``, ``limit-tpot``, ``mean-line``, ``p50``, ``p99``,
    ``legend``; ``box`` = (left, top, right, bottom) in the image's pixels."""

    name: str
    colour: str
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class Plot:
    title: str
    png: bytes
    elements: tuple[Element, ...] = field(default=())

    @property
    def elements_json(self) -> str:
        return json.dumps([{"name": e.name, "colour": e.colour, "box": list(e.box)} for e in self.elements])

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


def _plot(title: str, figure: Any) -> Plot:
    """The PNG, and the boxes of the artists marked ``mlperf:<name>:<colour>`` (their gid) as
    drawn in it (after the save, so the layout is the saved one)."""
    png = _png(figure)
    renderer = figure.canvas.get_renderer()
    height = figure.bbox.height
    elements = []
    for artist in figure.findobj(lambda a: str(a.get_gid() or "").startswith("mlperf:")):
        _, name, colour = str(artist.get_gid()).split(":", 2)
        box = artist.get_window_extent(renderer)
        for ax in figure.axes:  # a line spans its axes' data limits: clip to what is shown
            if artist in ax.get_children() or getattr(artist, "axes", None) is ax:
                box = box.intersection(box, ax.bbox) or box
        elements.append(Element(name, colour, (int(box.x0), int(height - box.y1),
                                               int(box.x1 + 0.999), int(height - box.y0 + 0.999))))
    return Plot(title, png, tuple(elements))


def _mark(artist: Any, name: str, colour: str) -> Any:
    artist.set_gid(f"mlperf:{name}:{colour}")
    return artist


def _legend(ax: Any, handles: Sequence[Any] | None = None) -> None:
    legend = ax.legend(handles=handles, fontsize=8, loc="best") if handles else ax.legend(fontsize=8, loc="best")
    frame = legend.get_frame()
    frame.set_edgecolor("#000000")
    _mark(legend, "legend", "#000000")


def limits_ms(record: BenchmarkRecord) -> dict[str, float]:
    """The scenario's TTFT and TPOT limits (ms) as loadgen was given them (its detail log's
    ``requested_server_*_latency``): Server and Interactive; none when the log is gone."""
    if record.scenario not in ("Server", "Interactive"):
        return {}
    from pytest_mlperf.loadgen.logs import LogError, read_detail

    try:
        log = read_detail(Path(record.run.outdir) / "mlperf_log_detail.txt")
    except LogError:
        return {}
    found = {}
    for name in ("ttft", "tpot"):
        value = log.get(f"requested_server_{name}_latency")
        if isinstance(value, (int, float)) and value > 0:
            found[name] = value / 1e6
    return found


def _integer_axis(axis: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def percentile_plot(record: BenchmarkRecord) -> Plot | None:
    figures = record.figures
    panels = [(label, dist) for label, dist in (("query latency", figures.latency_ns),
                                                ("time to first token", figures.ttft_ns),
                                                ("time per output token", figures.tpot_ns))
              if not dist.empty]
    if not panels:
        return None
    limits = limits_ms(record)
    figure = _figure(3.2 * len(panels), 2.8)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, (label, dist) in zip(axes, panels, strict=True):
        points = _points(dist)
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", color="#1f77b4",
                label="loadgen")
        limit = {"time to first token": "ttft", "time per output token": "tpot"}.get(label)
        if limit in limits:
            _mark(ax.axhline(limits[limit], color=LIMIT_COLOUR, linestyle="--", linewidth=1.5,
                             label=f"limit {limits[limit]:,.0f} ms"), f"limit-{limit}", LIMIT_COLOUR)
            _legend(ax)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("percentile")
        ax.set_ylabel("ms")
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(alpha=0.3)
    figure.suptitle("Latency distributions (loadgen)", fontsize=11)
    return _plot("Latency distributions (loadgen)", figure)


def _points(dist: Distribution) -> list[tuple[str, float]]:
    return [(label, value / 1e6) for stat, label in _PERCENTILES
            if (value := getattr(dist, stat)) is not None]


def histogram_plot(details: RunDetails, limits: dict[str, float] | None = None) -> Plot | None:
    panels = [(name, label, h) for name, label, h in (("ttft", "time to first token", details.ttft_ms),
                                                      ("tpot", "time per output token", details.tpot_ms))
              if h is not None]
    if not panels:
        return None
    limits = limits or {}
    figure = _figure(4.2 * len(panels), 2.8)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, label, hist) in zip(axes, panels, strict=True):
        _bars(ax, hist)
        if name in limits:
            _mark(ax.axvline(limits[name], color=LIMIT_COLOUR, linestyle="-", linewidth=1.5,
                             label=f"limit {limits[name]:,.0f} ms"), f"limit-{name}", LIMIT_COLOUR)
        _legend(ax)
        ax.set_title(f"{label} ({hist.count} queries)", fontsize=10)
        ax.set_xlabel("ms")
        ax.set_ylabel("queries")
        _integer_axis(ax.yaxis)
        ax.grid(alpha=0.3)
    figure.suptitle("Per query, as the harness timed it", fontsize=11)
    return _plot("TTFT and TPOT per query", figure)


def _bars(ax, hist: Histogram) -> None:  # type: ignore[no-untyped-def]
    widths = [b - a for a, b in zip(hist.edges[:-1], hist.edges[1:], strict=True)]
    ax.bar(hist.edges[:-1], hist.counts, width=widths, align="edge", color="#2ca02c", alpha=0.8,
           label="queries")
    # p99 first: where the two meet (a run of equal latencies), p50's dots on top leave the
    # dashes beneath visible, so both marks show
    for value, name, colour, style in ((hist.p99, "p99", P99_COLOUR, "--"), (hist.p50, "p50", P50_COLOUR, ":")):
        if value is not None:
            _mark(ax.axvline(value, color=colour, linestyle=style, linewidth=1.5,
                             label=f"{name} {value:,.1f} ms"), name, colour)


def sliding_rates(timeline: Sequence[tuple[float, int, int, int]]) -> tuple[float, list[float]]:
    """Completed tokens/s at each progress sample over the window before it (a share of the
    run, at least :data:`MIN_WINDOW_S`): the window and the rates. Smooths the steps that
    batch-wise completion makes without hiding a slow stretch."""
    times = [p[0] for p in timeline]
    window = max(MIN_WINDOW_S, WINDOW_SHARE * (times[-1] - times[0]))
    rates, j = [], 0
    for i, (t, _, _, tokens) in enumerate(timeline):
        while j + 1 < i and times[j + 1] <= t - window:
            j += 1  # j: the last sample at or before the window's start (else the first)
        span = t - times[j]
        rates.append((tokens - timeline[j][3]) / span if span > 0 else 0.0)
    return window, rates


def timeline_plot(details: RunDetails, record: BenchmarkRecord | None = None) -> Plot | None:
    points = details.timeline
    if len(points) < 2:
        return None
    times = [p[0] for p in points]
    window, rates = sliding_rates(points)
    in_flight = [p[1] - p[2] for p in points]
    accuracy = record is not None and record.mode == "accuracy"
    figure = _figure(8.0, 2.8)
    ax = figure.subplots()
    (rate_line,) = ax.plot(times, rates, color="#1f77b4",
                           label=f"completed tokens/s ({window:g} s window)")
    handles = [rate_line]
    reported = record.figures.tokens_per_second if record is not None and not accuracy else None
    if reported:
        handles.append(_mark(ax.axhline(reported, color=MEAN_COLOUR, linestyle="--", linewidth=1.5,
                                        label=f"reported: {reported:,.1f} tokens/s"), "mean-line", MEAN_COLOUR))
    ax.set_xlabel("seconds into the run")
    ax.set_ylabel("tokens/s", color="#1f77b4")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    other = ax.twinx()
    (flight,) = other.step(times, in_flight, where="post", color="#2ca02c", label="queries in flight")
    handles.append(flight)
    other.set_ylabel("queries in flight", color="#2ca02c")
    other.set_ylim(bottom=0)
    _integer_axis(other.yaxis)
    _legend(other, handles)
    if accuracy:
        title = "Accuracy run: completions over the run (not a performance figure)"
    else:
        title = "Throughput and queries in flight over the run"
    figure.suptitle(title, fontsize=11)
    return _plot("Accuracy run over time" if accuracy else "Throughput over the run", figure)


def plots(record: BenchmarkRecord, details: RunDetails | None) -> Sequence[Plot]:
    made = [percentile_plot(record)]
    if details is not None:
        made += [histogram_plot(details, limits_ms(record)), timeline_plot(details, record)]
    return [p for p in made if p is not None]
