"""One loadgen run into a folder of its own, returning a typed :class:`RunResult`."""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_mlperf.backends.base import Backend
from pytest_mlperf.core.record import Distribution, Figures, Run
from pytest_mlperf.core.vocabulary import Mode, Scenario
from pytest_mlperf.loadgen.budget import MARGIN_S
from pytest_mlperf.loadgen.logs import DetailLog, LogError, read_detail
from pytest_mlperf.loadgen.settings import SettingsError, SettingsPlan, conf_values
from pytest_mlperf.loadgen.sut import LoadgenResponder, LoadgenSUT, Progress

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
    #: the run was ended by its time limit (``backend_error`` says which)
    timed_out: bool = False
    #: settings the user made that loadgen ran with another value (each names its source)
    settings_not_applied: tuple[str, ...] = ()
    #: user.conf values a higher source overrode
    settings_notes: tuple[str, ...] = ()
    #: answers of no token from the engine
    empty_answers: int = 0

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


#: what loadgen logs for each empty answer of a streaming run (the bridge's, to a failed run)
_EMPTY_ANSWER = "attempted to record 0 as number of tokens"
#: after a Ctrl-C, how long the run may take to end once every query is answered (Offline and
#: SingleStream end at once; a Server run's schedule may go on, and is then abandoned)
INTERRUPT_GRACE_S = 5.0
#: after the time limit, how long loadgen may take to end once every query is answered
STOP_GRACE_S = 30.0


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
    overwritten. A backend that raises, reports failure or breaks the responder's contract
    ends the run early with every outstanding query answered empty; the logs are kept and the
    error is in the result. ``timeout_s`` (default: derived from the effective settings, see
    :mod:`~pytest_mlperf.loadgen.budget`) does the same for an engine that hangs. A Ctrl-C
    ends the run the same way and raises KeyboardInterrupt once loadgen returned (or after
    :data:`INTERRUPT_GRACE_S`, leaving it to finish in the background). ``on_progress`` is
    called every ``progress_interval_s`` seconds on a thread of its own while the run goes
    on, and once at its end, with the bridge's :class:`Progress`.
    """
    import mlperf_loadgen as lg

    from pytest_mlperf.core import bounded
    from pytest_mlperf.data.modelinfo import model_limits
    from pytest_mlperf.loadgen.budget import check_limit, run_budget

    if mode is Mode.BOTH:
        raise ValueError("run_loadgen runs one mode at a time")
    busy = bounded.abandoned(unsafe_only=True)
    if busy:
        raise RuntimeError(f"{busy[0]} still runs in the background; loadgen runs one test at a time")
    settings = plan.build(mode)
    budget = run_budget(settings, plan.scenario, mode, plan.total_count)
    if timeout_s:
        problem = check_limit(budget, timeout_s, "--mlperf-run-timeout")
        if problem:
            raise SettingsError(problem)
        limit, why = timeout_s, "--mlperf-run-timeout"
    else:
        limit, why = budget.timeout_s, f"the default limit, 2 x {budget.expected_s:.0f} s + {MARGIN_S:g} s ({budget.basis})"
    outdir.mkdir(parents=True, exist_ok=False)
    backend.prepare(plan.scenario)
    log_settings = lg.LogSettings()
    log_settings.log_output.outdir = str(outdir)
    log_settings.log_output.copy_summary_to_stdout = False
    log_settings.enable_trace = False

    limits = model_limits(getattr(backend.system, "path", None))
    responder = LoadgenResponder(
        lg, first_token_required=plan.scenario.streaming and bool(settings.use_token_latencies),
        vocab_size=limits.vocab_size if limits else None,
    )
    sut = LoadgenSUT(lg, backend, prompts, responder)
    qsl = lg.ConstructQSL(plan.total_count, plan.performance_count, lambda _: None, lambda _: None)
    timed_out = threading.Event()
    finished = threading.Event()
    stop_watching = threading.Event()

    laid_out: list[int] = []

    def watch() -> None:
        """The time limit; a default one is remade from what loadgen logs it laid out, which
        also gives the progress line its total."""
        nonlocal limit, why
        learn = True
        while not stop_watching.wait(0.25):
            elapsed = time.perf_counter() - started
            if learn and elapsed >= 0.5:
                logged = _logged_budget(outdir, plan.scenario, mode)
                if logged is not None:
                    learn = False
                    if logged.queries and plan.scenario is not Scenario.OFFLINE:
                        laid_out.append(logged.queries)
                    if not timeout_s:
                        limit = logged.timeout_s
                        why = (f"the default limit, 2 x {logged.expected_s:.0f} s + {MARGIN_S:g} s "
                               f"({logged.basis})")
            if elapsed >= limit:
                timed_out.set()
                responder.fail(TimeoutError(f"the run did not finish within {limit:g} s ({why})"
                                            + _unanswered(responder, backend)))
                return

    watchdog = threading.Thread(target=watch, name="mlperf-watchdog", daemon=True)
    reporter = None
    done = threading.Event()

    def progress() -> Progress:
        now = responder.progress()
        return dataclasses.replace(now, laid_out=laid_out[0]) if laid_out else now
    if on_progress is not None:
        def report() -> None:
            while not done.wait(progress_interval_s):
                on_progress(progress())

        reporter = threading.Thread(target=report, name="mlperf-progress", daemon=True)
        reporter.start()
    crashed: list[BaseException] = []

    def start_test() -> None:
        try:
            # A stray audit.config in the working directory would silently turn this into a
            # compliance run: loadgen only reads the file named here, which never exists.
            lg.StartTestWithLogSettings(
                sut.handle, qsl, settings, log_settings, str(outdir / "audit.config.unused")
            )
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            crashed.append(exc)
        finally:
            finished.set()

    # loadgen's test runs on this thread of its own, so that this one stays free for the
    # time limit and for a Ctrl-C (Python delivers signals to the main thread only).
    thread = threading.Thread(target=start_test, name="mlperf-loadgen", daemon=True)
    started = time.perf_counter()
    watchdog.start()
    thread.start()
    interrupted = False
    ended = True
    try:
        ended = _wait(finished, timed_out)
    except KeyboardInterrupt:
        interrupted = True
        responder.fail(KeyboardInterrupt("interrupted (Ctrl-C)"))
        ended = bounded.wait(finished, INTERRUPT_GRACE_S, hurry=True)
    finally:
        wall = time.perf_counter() - started
        stop_watching.set()
        done.set()
        if not ended:
            bounded.abandon(thread, f"the loadgen run in {outdir}", unsafe_at_exit=True)
        else:
            responder.close()
            if reporter is not None:
                reporter.join()
                on_progress(progress())  # type: ignore[misc]
            lg.DestroyQSL(qsl)
            sut.destroy()
    if responder.error is not None:
        # loadgen's own summary of a failed run may still say VALID: the folder says otherwise
        mark_untrusted(outdir, "interrupted" if interrupted else _error_text(responder.error) or "failed")
    if interrupted:
        raise KeyboardInterrupt(f"loadgen run interrupted; logs so far in {outdir}")
    if crashed:
        raise crashed[0]
    if not ended:
        return RunResult(
            outdir=outdir, scenario=plan.scenario, mode=mode, settings={},
            loadgen_errors=(f"loadgen did not end within {STOP_GRACE_S:g} s of every query being "
                            "answered; it was left running in the background",),
            backend_error=_error_text(responder.error), wall_seconds=wall,
            output_tokens=responder.output_tokens, timed_out=True, empty_answers=responder.empty_answers,
        )

    backend_error = _error_text(responder.error)
    try:
        log = read_detail(outdir / "mlperf_log_detail.txt")
    except LogError as exc:
        return RunResult(
            outdir=outdir, scenario=plan.scenario, mode=mode, settings={},
            loadgen_errors=(str(exc),), backend_error=backend_error, wall_seconds=wall,
            output_tokens=responder.output_tokens, timed_out=timed_out.is_set(),
        )
    validity, reason, figures, flags = _result_from_log(log)
    problems, notes = settings_applied(plan, log)
    errors = log.errors
    if responder.error is not None:
        # the bridge's own empty answers to a failed run: loadgen counts them as errors of
        # their own, which would bury the engine's error under a dozen copies of this one
        errors = tuple(e for e in errors if _EMPTY_ANSWER not in e)
    return RunResult(
        outdir=outdir,
        scenario=plan.scenario,
        mode=mode,
        settings=effective_settings(log),
        validity=validity if mode is Mode.PERFORMANCE else None,
        invalid_reason=reason if mode is Mode.PERFORMANCE else None,
        figures=figures if mode is Mode.PERFORMANCE else Figures(),
        flags=flags if mode is Mode.PERFORMANCE else {},
        loadgen_errors=errors,
        backend_error=backend_error,
        wall_seconds=wall,
        output_tokens=responder.output_tokens,
        loadgen_version=log.get("loadgen_version"),
        timed_out=timed_out.is_set(),
        settings_not_applied=problems,
        settings_notes=notes,
        empty_answers=responder.empty_answers,
    )


def _unanswered(responder: Any, backend: Backend) -> str:
    """Who owed the answers at the time limit: the backend, and its endpoints when served."""
    waiting = responder.progress().in_flight
    if not waiting:
        return ""
    endpoints = getattr(getattr(backend, "system", None), "endpoints", ()) or ()
    where = f" at {', '.join(endpoints)}" if endpoints else ""
    return f"; {waiting} queries were still unanswered by backend '{backend.name}'{where}"


#: written into a run's folder when its figures cannot be trusted (loadgen's summary may say VALID)
UNTRUSTED_FILE = "FIGURES_NOT_VALID.txt"


def mark_untrusted(outdir: Path, why: str) -> None:
    try:
        (outdir / UNTRUSTED_FILE).write_text(
            f"The figures of this run cannot be trusted, whatever mlperf_log_summary.txt says: "
            f"{why}.\nQueries still in flight were answered empty to end the run.\n", encoding="utf-8")
    except OSError:
        pass  # the run's own failure is reported; a read-only folder must not hide it


def _logged_budget(outdir: Path, scenario: Scenario, mode: Mode) -> Any:
    from pytest_mlperf.loadgen.budget import logged_budget

    try:
        return logged_budget(read_detail(outdir / "mlperf_log_detail.txt"), scenario, mode)
    except (LogError, OSError):
        return None  # not written yet


def _wait(finished: threading.Event, timed_out: threading.Event) -> bool:
    """Wait for loadgen to end; False when it has not, :data:`STOP_GRACE_S` after the time
    limit answered every query (a Ctrl-C raises KeyboardInterrupt at once)."""
    from pytest_mlperf.core import bounded

    while not bounded.wait(finished, 1.0):
        if timed_out.is_set() and not bounded.wait(finished, STOP_GRACE_S):
            return False
    return True


def _error_text(error: BaseException | None) -> str | None:
    if error is None:
        return None
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


#: TestSettings fields whose detail-log key is not ``requested_<field>``
_REQUESTED_KEY = {"ttft_latency": "requested_server_ttft_latency",
                  "tpot_latency": "requested_server_tpot_latency"}


def settings_applied(plan: SettingsPlan, log: DetailLog) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Whether every setting the user made took effect, by the detail log's ``requested_*``
    keys (what loadgen was given): ``(problems, notes)``. A problem is a setting loadgen ran
    with another value; a note a user.conf value that a higher source overrode. A setting the
    log does not show for this scenario (``server_target_qps`` in Offline) is not one."""
    problems, notes = [], []
    user = plan.user_values()
    for name, (value, source) in user.items():
        if name == "performance_sample_count_override" and value == 0:
            continue  # 0: every sample of the QSL, which is what loadgen is given
        logged = log.get(_REQUESTED_KEY.get(name, f"requested_{name}"))
        if logged is None or _same(logged, value):
            continue
        problems.append(f"{name} = {value!r} ({source}) did not take effect: loadgen ran with {logged!r}")
    if plan.user_conf is not None:
        name = plan.scenario.loadgen_name
        conf = conf_values(plan.model_key, name, plan.profile_values(), plan.user_conf)
        without = conf_values(plan.model_key, name, plan.profile_values(), None)
        for key, conf_value in conf.items():
            if without.get(key) == conf_value or key not in user:
                continue
            value, source = user[key]
            if source != str(plan.user_conf) and not _same(value, conf_value):
                notes.append(f"{plan.user_conf}: {key} = {conf_value!r} is overridden by {source} ({key} = {value!r})")
    return tuple(problems), tuple(notes)


def _same(logged: Any, value: Any) -> bool:
    if isinstance(logged, (int, float)) and isinstance(value, (int, float)):
        return math.isclose(float(logged), float(value), rel_tol=1e-9, abs_tol=1e-12)
    return bool(logged == value)
