"""One benchmark test, run in the test's call phase: start the engine if needed, run loadgen,
score, judge, and make the :class:`~pytest_mlperf.core.record.BenchmarkRecord`.

``mlperf_result`` (the fixture a benchmark test asks for) is a :class:`BenchmarkResult` made at
setup, where nothing runs; the plugin calls :meth:`BenchmarkResult.execute` just before the
test body, so ``--setup-only`` runs nothing, ``--durations`` books the run under ``call`` and a
failing run is FAILED, not ERROR. The body then sees the finished result.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_mlperf.core import stash
from pytest_mlperf.core.record import (
    Accuracy,
    BenchmarkRecord,
    DatasetInfo,
    Figures,
    Target,
    Timings,
    Verdict,
)
from pytest_mlperf.core.vocabulary import Mode, Scenario


@dataclass
class _Done:
    run: Any
    verdict: Verdict
    record: BenchmarkRecord


class BenchmarkResult:
    """The result of this test's benchmark: ``run`` (the loadgen run), ``verdict`` and
    ``record``. Available in the test body; the plugin fails the test when the verdict fails,
    after the body (which may check more)."""

    def __init__(self, request: pytest.FixtureRequest, *, scenario: Scenario, mode: Mode) -> None:
        self._request = request
        self.scenario = scenario
        self.mode = mode
        self._done: _Done | None = None

    # -- what the test body reads ---------------------------------------------------------------
    def _get(self) -> _Done:
        if self._done is None:
            raise RuntimeError(
                "mlperf_result is read before the benchmark ran: the plugin runs it at the start "
                "of the test's call phase (use it in the test body, not in another fixture)"
            )
        return self._done

    @property
    def run(self) -> Any:
        """The :class:`~pytest_mlperf.loadgen.runner.RunResult`."""
        return self._get().run

    @property
    def verdict(self) -> Verdict:
        return self._get().verdict

    @property
    def record(self) -> BenchmarkRecord:
        return self._get().record

    @property
    def executed(self) -> bool:
        return self._done is not None

    # -- what the plugin calls ------------------------------------------------------------------
    def execute(self) -> None:
        if self._done is not None:
            return
        request = self._request
        get = request.getfixturevalue
        spec = get("mlperf_spec")
        options = get("mlperf_options")
        system = get("mlperf_model")
        dataset = get("mlperf_dataset")
        sut = get("mlperf_sut")
        runner: Callable[[Mode], Any] = get("mlperf_runner")
        started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        began = time.perf_counter()
        if self.scenario.streaming and not sut.streaming:
            pytest.fail(
                f"backend '{sut.name}' ({type(sut).__name__}) cannot report first tokens, "
                f"which {self.scenario.value} needs", pytrace=False,
            )
        from pytest_mlperf.loadgen.settings import SettingsError
        from pytest_mlperf.run import preflight
        from pytest_mlperf.run.engines import EngineStartError

        preflight.check_inputs(request)  # once per session: the prompts fit the model
        if self.mode is Mode.ACCURACY:
            get("mlperf_tokenizer")  # scoring decodes outputs: no tokenizer fails before the run
        try:
            settings = check_settings(get("mlperf_settings"), self.mode, options.run_timeout)
        except SettingsError as exc:
            _fail(request, str(exc), exc)
        from pytest_mlperf.loadgen.settings import snapshot
        from pytest_mlperf.run.conformance import classify

        # MLPerf or not, decided before any engine starts (official: refused here)
        conformance = classify(request, self.scenario, self.mode, snapshot(settings), sut)
        engines = get("mlperf_engines")
        try:
            engine_start = engines.start(sut, self.scenario,
                                         on_start=lambda: stash.engine_starting(request.node))
        except EngineStartError as exc:
            _fail(request, str(exc), exc.__cause__ or exc)
        from pytest_mlperf.run import conformance as rules_check
        from pytest_mlperf.run.runs import perform

        hits_before = rules_check.cache_hits(sut)
        # One run, or --mlperf-repeat's, a --mlperf-find-peak search, then TEST06's audit run.
        try:
            run = perform(request, runner, self.scenario, self.mode)
        except SettingsError as exc:
            _fail(request, str(exc), exc)
        run = self._after_run(run, engines, sut)
        conformance, cache_failures = rules_check.after_run(
            conformance, hits_before, rules_check.cache_hits(sut), options)
        scoring = 0.0
        accuracy = None
        if self.mode is Mode.ACCURACY:
            t0 = time.perf_counter()
            verdict, accuracy = self._judge_accuracy(run)
            scoring = time.perf_counter() - t0
        else:
            from pytest_mlperf.gate.verdict import judge_performance

            verdict = judge_performance(run, spec.thresholds_for(self.scenario))
        not_applied = (*getattr(run, "settings_not_applied", ()), *cache_failures)
        if not_applied:
            verdict = Verdict(passed=False, reasons=(*verdict.reasons, *not_applied))
        untrusted = untrusted_figures(run)
        if untrusted is not None:
            if verdict.passed:
                verdict = Verdict(passed=False, reasons=(f"the run's figures cannot be trusted: {untrusted}",))
            # no throughput or validity shown anywhere, and never a baseline
            run = dataclasses.replace(run, figures=Figures(), validity=None, invalid_reason=untrusted)
        from pytest_mlperf.core.system import describe_system

        record = BenchmarkRecord(
            benchmark=spec.benchmark, scenario=self.scenario.value, mode=self.mode.value,
            profile=options.profile.value,
            system=describe_system(
                backend=sut.name or type(sut).__name__, backend_info=sut.describe(),
                model=system.label(), kind=system.kind, endpoints=system.endpoints,
                root=request.config.rootpath,
            ),
            run=run.to_record(),
            verdict=verdict,
            dataset=DatasetInfo(path=str(dataset.path), sha256=dataset.sha256,
                                samples=len(dataset), total_records=dataset.total_records),
            figures=run.figures if self.mode is Mode.PERFORMANCE else Figures(),
            accuracy=accuracy,
            timings=Timings(started=started, engine_start_s=round(engine_start, 3),
                            run_s=round(run.wall_seconds, 3), scoring_s=round(scoring, 3),
                            total_s=round(time.perf_counter() - began, 3)),
            nodeid=request.node.nodeid,
            worker=getattr(request.config, "workerinput", {}).get("workerid", ""),
            conformance=conformance,
            figures_valid=untrusted is None, figures_invalid_reason=untrusted,
        )
        self._done = _Done(run=run, verdict=verdict, record=record)

    def _after_run(self, run: Any, engines: Any, sut: Any) -> Any:
        """A run whose engine failed drops the engine (the next test starts a fresh one);
        settings that did not take effect fail the test, user.conf values overridden warn."""
        from pytest_mlperf.core import bounded

        if getattr(run, "backend_error", None):
            run = dataclasses.replace(run, backend_error=run.backend_error + engines.evict(sut))
        busy = bounded.abandoned(unsafe_only=True)
        if busy:
            self._request.session.shouldstop = f"mlperf: {busy[0]} could not be stopped"
        for note in getattr(run, "settings_notes", ()):
            import warnings

            warnings.warn(MlperfSettingWarning(note), stacklevel=1)
        return run

    def amend(self, reasons: Sequence[str] = (), **record_fields: Any) -> None:
        """After the run: add reasons to fail (gates beyond the run's own verdict, e.g. a
        regression against a stored run) and fields to the record."""
        done = self._get()
        verdict = done.verdict
        if reasons:
            verdict = Verdict(passed=False, reasons=(*verdict.reasons, *reasons))
        record = dataclasses.replace(done.record, verdict=verdict, **record_fields)
        self._done = _Done(run=done.run, verdict=verdict, record=record)

    def _judge_accuracy(self, run: Any) -> tuple[Verdict, Accuracy]:
        from pytest_mlperf.gate.verdict import judge_accuracy

        get = self._request.getfixturevalue
        choice = get("mlperf_baseline")
        baseline = choice.baseline
        scores = None
        if run.accuracy_log.is_file() and not run.backend_error:
            from pytest_mlperf.accuracy import score_log

            scores = score_log(run.accuracy_log, get("mlperf_dataset").references, get("mlperf_tokenizer"))
        verdict = judge_accuracy(run, scores, baseline)
        target = Target(
            name=baseline.name, ratio=baseline.ratio, rouge1=baseline.rouge1, rouge2=baseline.rouge2,
            rougeL=baseline.rougeL, rougeLsum=baseline.rougeLsum, gen_len=baseline.gen_len,
            tokens_per_sample=baseline.tokens_per_sample, samples=baseline.samples,
        )
        figures = scores.as_dict() if scores is not None else {}
        accuracy = Accuracy(**figures, target=target, official=choice.official, note=choice.note)
        return verdict, accuracy


class MlperfSettingWarning(UserWarning):
    """A setting that took effect in another form than the user wrote it (a user.conf value a
    higher source overrode)."""


def check_settings(plan: Any, mode: Mode, run_timeout: float | None) -> Any:
    """The run's settings, built and checked as loadgen will get them, and the time limit
    against their schedule: :class:`~pytest_mlperf.loadgen.settings.SettingsError` before
    any engine starts. Returns the built ``TestSettings``."""
    from pytest_mlperf.loadgen.budget import check_limit, run_budget
    from pytest_mlperf.loadgen.settings import SettingsError

    settings = plan.build(mode)
    if run_timeout:
        problem = check_limit(run_budget(settings, plan.scenario, mode, plan.total_count),
                              run_timeout, "--mlperf-run-timeout")
        if problem:
            raise SettingsError(problem)
    return settings


def _fail(request: pytest.FixtureRequest, message: str, cause: BaseException) -> None:
    """Fail the test with ``message``; the traceback of ``cause`` only with ``-v``."""
    if request.config.get_verbosity() > 0 and cause.__traceback__ is not None:
        import traceback

        message += "\n\n" + "".join(traceback.format_exception(type(cause), cause, cause.__traceback__))
    pytest.fail(message, pytrace=False)


def new_run_dir(base: Path) -> Path:
    """``<base>/run_<n>``: a new folder for every run, never reused (atomic ``mkdir``, so two
    xdist workers can never get the same one)."""
    base.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        candidate = base / f"run_{n}"
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            n += 1


def relative(path: str | os.PathLike[str], start: Path | None = None) -> str:
    """``path`` relative to ``start`` (the current directory) when it lies below it."""
    start = start or Path.cwd()
    try:
        return str(Path(path).resolve().relative_to(start.resolve()))
    except ValueError:
        return str(path)


def untrusted_figures(run: Any) -> str | None:
    """Why a run's figures measure something other than the engine answering (None: they can
    be trusted): its backend failed, it timed out, or the engine gave empty answers."""
    if getattr(run, "timed_out", False):
        return "the run was ended by its time limit"
    if getattr(run, "backend_error", None):
        return "the backend failed during the run"
    empty = getattr(run, "empty_answers", 0)
    if empty:
        return f"{empty} answer(s) of no token at all"
    return None
