"""One loadgen run into a folder of its own, returning a typed :class:`RunResult`."""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_mlperf.backends.base import Backend
from pytest_mlperf.loadgen.logs import DetailLog, LogError, read_detail
from pytest_mlperf.loadgen.settings import Mode, Scenario, SettingsPlan, settings_dict
from pytest_mlperf.loadgen.sut import LoadgenResponder, LoadgenSUT

#: Detail-log keys the verdict and the report use, under short names.
_FIGURES = {
    "tokens_per_second": ("result_tokens_per_second", "result_completed_tokens_per_second"),
    "samples_per_second": ("result_samples_per_second", "result_completed_samples_per_sec"),
    "ttft_p99_ns": ("result_first_token_99.00_percentile_latency_ns",),
    "tpot_p99_ns": ("result_time_per_output_token_99.00_percentile_ns",),
    "latency_p90_ns": ("result_90.00_percentile_latency_ns",),
    "latency_p99_ns": ("result_99.00_percentile_latency_ns",),
    "query_count": ("result_query_count",),
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
    settings: dict[str, Any]
    validity: str | None = None
    invalid_reason: str | None = None
    figures: dict[str, float] = field(default_factory=dict)
    flags: dict[str, bool] = field(default_factory=dict)
    loadgen_errors: tuple[str, ...] = ()
    backend_error: str | None = None
    wall_seconds: float = 0.0
    output_tokens: int = 0

    @property
    def accuracy_log(self) -> Path:
        return self.outdir / "mlperf_log_accuracy.json"

    @property
    def detail_log(self) -> Path:
        return self.outdir / "mlperf_log_detail.txt"

    def as_dict(self) -> dict[str, Any]:
        return {
            "outdir": str(self.outdir),
            "scenario": self.scenario.value,
            "mode": self.mode.value,
            "validity": self.validity,
            "invalid_reason": self.invalid_reason,
            "figures": self.figures,
            "flags": self.flags,
            "loadgen_errors": list(self.loadgen_errors),
            "backend_error": self.backend_error,
            "wall_seconds": round(self.wall_seconds, 3),
            "output_tokens": self.output_tokens,
        }


def _result_from_log(log: DetailLog) -> tuple[str | None, str | None, dict[str, float], dict[str, bool]]:
    figures: dict[str, float] = {}
    for name, keys in _FIGURES.items():
        for key in keys:
            value = log.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                figures[name] = float(value)
                break
    flags = {name: bool(log.get(key)) for name, key in _FLAGS.items() if log.get(key) is not None}
    reason = log.get("result_invalid_reason")
    return log.get("result_validity"), (reason.strip() if reason else None), figures, flags


def run_loadgen(
    *,
    plan: SettingsPlan,
    mode: Mode,
    backend: Backend,
    prompts: Sequence[Sequence[int]],
    outdir: Path,
    timeout_s: float | None = None,
) -> RunResult:
    """Run loadgen once over ``prompts`` (the QSL, by index) into ``outdir``.

    The folder must be new: loadgen appends to existing logs, and earlier runs are never
    overwritten. A backend that raises or reports failure ends the run early with every
    outstanding query answered empty; the logs are kept and the error is in the result.
    ``timeout_s`` does the same for an engine that hangs: past it, the run is failed.
    """
    import mlperf_loadgen as lg

    if mode is Mode.BOTH:
        raise ValueError("run_loadgen runs one mode at a time")
    outdir.mkdir(parents=True, exist_ok=False)
    settings = plan.build(mode)
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
    started = time.perf_counter()
    try:
        # A stray audit.config in the working directory would silently turn this into a
        # compliance run: loadgen only reads the file named here, which never exists.
        lg.StartTestWithLogSettings(
            sut.handle, qsl, settings, log_settings, str(outdir / "audit.config.unused")
        )
    finally:
        wall = time.perf_counter() - started
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
            outdir=outdir, scenario=plan.scenario, mode=mode, settings=settings_dict(settings),
            loadgen_errors=(str(exc),), backend_error=backend_error, wall_seconds=wall,
            output_tokens=responder.output_tokens,
        )
    validity, reason, figures, flags = _result_from_log(log)
    return RunResult(
        outdir=outdir,
        scenario=plan.scenario,
        mode=mode,
        settings=settings_dict(settings),
        validity=validity if mode is Mode.PERFORMANCE else None,
        invalid_reason=reason if mode is Mode.PERFORMANCE else None,
        figures=figures if mode is Mode.PERFORMANCE else {},
        flags=flags if mode is Mode.PERFORMANCE else {},
        loadgen_errors=log.errors,
        backend_error=backend_error,
        wall_seconds=wall,
        output_tokens=responder.output_tokens,
    )
