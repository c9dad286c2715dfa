"""One loadgen run into a folder of its own, returning a typed :class:`RunResult`."""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_mlperf.backends.base import Backend
from pytest_mlperf.loadgen.logs import DetailLog, LogError, read_detail
from pytest_mlperf.loadgen.settings import SettingsPlan
from pytest_mlperf.loadgen.sut import LoadgenResponder, LoadgenSUT, Progress
from pytest_mlperf.record import Distribution, Figures, Run
from pytest_mlperf.vocabulary import Mode, Scenario

_PERCENTILES = {"p50": "50.00", "p90": "90.00", "p95": "95.00", "p97": "97.00", "p99": "99.00",
                "p999": "99.90"}
#: Distribution -> (key of min/mean/max with {stat}, key of a percentile with {pct})
_DISTRIBUTIONS = {
    "latency_ns": ("result_{stat}_latency_ns", "result_{pct}_percentile_latency_ns"),
    "ttft_ns": ("result_first_token_{stat}_latency_ns", "result_first_token_{pct}_percentile_latency_ns"),
    "tpot_ns": ("result_time_to_output_token_{stat}", "result_time_per_output_token_{pct}_percentile_ns"),
}
#: Figures field -> detail-log keys, the first present wins (wording differs by scenario/version)
_RATES = {
    "samples_per_second": ("result_samples_per_second", "result_completed_samples_per_sec",
                           "result_qps_with_loadgen_overhead"),
    "tokens_per_second": ("result_tokens_per_second", "result_completed_tokens_per_second",
                          "result_token_throughput"),
    "scheduled_samples_per_second": ("result_scheduled_samples_per_sec",),
}
_FLAGS = {
    "min_duration_met": "result_min_duration_met",
    "min_queries_met": "result_min_queries_met",
    "perf_constraints_met": "result_perf_constraints_met",
    "early_stopping_met": "early_stopping_met",
}


@dataclass(frozen=True)
class RunResult:
    """What one loadgen run produced. ``validity`` is None in accuracy mode."""

    outdir: Path
    scenario: Scenario
    mode: Mode
    #: the effective TestSettings as the detail log states them (``effective_`` cut off)
    settings: dict[str, Any]
    validity: str | None = None
    invalid_reason: str | None = None
    figures: Figures = field(default_factory=Figures)
    flags: dict[str, bool] = field(default_factory=dict)
    loadgen_errors: tuple[str, ...] = ()
    backend_error: str | None = None
    wall_seconds: float = 0.0
    output_tokens: int = 0
    loadgen_version: str | None = None

    @property
    def accuracy_log(self) -> Path:
        return self.outdir / "mlperf_log_accuracy.json"

    @property
    def detail_log(self) -> Path:
        return self.outdir / "mlperf_log_detail.txt"

    def to_record(self, outdir: str | None = None) -> Run:
        """The record's view of this run (``outdir`` as the report should show it)."""
        return Run(
            outdir=outdir if outdir is not None else str(self.outdir), validity=self.validity,
            invalid_reason=self.invalid_reason, flags=dict(self.flags),
            loadgen_errors=self.loadgen_errors, backend_error=self.backend_error,
            output_tokens=self.output_tokens, settings=dict(self.settings),
            loadgen_version=self.loadgen_version,
        )


def _number(log: DetailLog, key: str) -> float | None:
    value = log.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def figures_from_log(log: DetailLog) -> Figures:
    """Every figure loadgen reported in a performance run's detail log."""
    dists = {}
    for name, (stat_key, pct_key) in _DISTRIBUTIONS.items():
        values = {stat: _number(log, stat_key.format(stat=stat)) for stat in ("min", "mean", "max")}
        values.update({label: _number(log, pct_key.format(pct=pct)) for label, pct in _PERCENTILES.items()})
        dists[name] = Distribution(**values)
    rates = {}
    for name, keys in _RATES.items():
        rates[name] = next((v for v in (_number(log, k) for k in keys) if v is not None), None)
    count = _number(log, "result_query_count")
    return Figures(**rates, query_count=None if count is None else int(count), **dists)


def effective_settings(log: DetailLog) -> dict[str, Any]:
    return {k[len("effective_"):]: v for k, v in log.values.items() if k.startswith("effective_")}


def _result_from_log(log: DetailLog) -> tuple[str | None, str | None, Figures, dict[str, bool]]:
    flags = {name: bool(log.get(key)) for name, key in _FLAGS.items() if log.get(key) is not None}
    reason = log.get("result_invalid_reason")
    return log.get("result_validity"), (reason.strip() if reason else None), figures_from_log(log), flags


def run_loadgen(
    *,
    plan: SettingsPlan,
    mode: Mode,
    backend: Backend,
    prompts: Sequence[Sequence[int]],
    outdir: Path,
    timeout_s: float | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    progress_interval_s: float = 5.0,
) -> RunResult:
    """Run loadgen once over ``prompts`` (the QSL, by index) into ``outdir``.

    The folder must be new: loadgen appends to existing logs, and earlier runs are never
    overwritten. A backend that raises or reports failure ends the run early with every
    outstanding query answered empty; the logs are kept and the error is in the result.
    ``timeout_s`` does the same for an engine that hangs: past it, the run is failed.
    ``on_progress`` is called every ``progress_interval_s`` seconds on a thread of its own
    while the run goes on, and once at its end, with the bridge's :class:`Progress`.
    """
    import mlperf_loadgen as lg

    if mode is Mode.BOTH:
        raise ValueError("run_loadgen runs one mode at a time")
    outdir.mkdir(parents=True, exist_ok=False)
    settings = plan.build(mode)
    backend.prepare(plan.scenario)
    log_settings = lg.LogSettings()
    log_settings.log_output.outdir = str(outdir)
    log_settings.log_output.copy_summary_to_stdout = False
    log_settings.enable_trace = False

    responder = LoadgenResponder(
        lg, first_token_required=plan.scenario.streaming and bool(settings.use_token_latencies)
    )
    sut = LoadgenSUT(lg, backend, prompts, responder)
    qsl = lg.ConstructQSL(plan.total_count, plan.performance_count, lambda _: None, lambda _: None)
    watchdog = None
    if timeout_s:
        watchdog = threading.Timer(
            timeout_s,
            lambda: responder.fail(TimeoutError(f"the run did not finish within {timeout_s:g} s")),
        )
        watchdog.daemon = True
        watchdog.start()
    reporter = None
    done = threading.Event()
    if on_progress is not None:
        def report() -> None:
            while not done.wait(progress_interval_s):
                on_progress(responder.progress())

        reporter = threading.Thread(target=report, name="mlperf-progress", daemon=True)
        reporter.start()
    started = time.perf_counter()
    try:
        # A stray audit.config in the working directory would silently turn this into a
        # compliance run: loadgen only reads the file named here, which never exists.
        lg.StartTestWithLogSettings(
            sut.handle, qsl, settings, log_settings, str(outdir / "audit.config.unused")
        )
    finally:
        wall = time.perf_counter() - started
        done.set()
        if reporter is not None:
            reporter.join()
            on_progress(responder.progress())  # type: ignore[misc]
        if watchdog is not None:
            watchdog.cancel()
        lg.DestroyQSL(qsl)
        sut.destroy()

    backend_error = None
    if responder.error is not None:
        backend_error = "".join(
            traceback.format_exception_only(type(responder.error), responder.error)
        ).strip()
    try:
        log = read_detail(outdir / "mlperf_log_detail.txt")
    except LogError as exc:
        return RunResult(
            outdir=outdir, scenario=plan.scenario, mode=mode, settings={},
            loadgen_errors=(str(exc),), backend_error=backend_error, wall_seconds=wall,
            output_tokens=responder.output_tokens,
        )
    validity, reason, figures, flags = _result_from_log(log)
    return RunResult(
        outdir=outdir,
        scenario=plan.scenario,
        mode=mode,
        settings=effective_settings(log),
        validity=validity if mode is Mode.PERFORMANCE else None,
        invalid_reason=reason if mode is Mode.PERFORMANCE else None,
        figures=figures if mode is Mode.PERFORMANCE else Figures(),
        flags=flags if mode is Mode.PERFORMANCE else {},
        loadgen_errors=log.errors,
        backend_error=backend_error,
        wall_seconds=wall,
        output_tokens=responder.output_tokens,
        loadgen_version=log.get("loadgen_version"),
    )
