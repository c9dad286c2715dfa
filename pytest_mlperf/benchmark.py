"""One benchmark test, run in the test's call phase: start the engine if needed, run loadgen,
score, judge, and make the :class:`~pytest_mlperf.record.BenchmarkRecord`.

``mlperf_result`` (the fixture a benchmark test asks for) is a :class:`BenchmarkResult` made at
setup, where nothing runs; the plugin calls :meth:`BenchmarkResult.execute` just before the
test body, so ``--setup-only`` runs nothing, ``--durations`` books the run under ``call`` and a
failing run is FAILED, not ERROR. The body then sees the finished result.
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_mlperf.record import (
    Accuracy,
    BenchmarkRecord,
    DatasetInfo,
    Figures,
    Target,
    Timings,
    Verdict,
)
from pytest_mlperf.vocabulary import Mode, Scenario


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
        engine_start = get("mlperf_engines").start(sut, self.scenario)
        run = runner(self.mode)
        scoring = 0.0
        accuracy = None
        if self.mode is Mode.ACCURACY:
            t0 = time.perf_counter()
            verdict, accuracy = self._judge_accuracy(run)
            scoring = time.perf_counter() - t0
        else:
            from pytest_mlperf.verdict import judge_performance

            verdict = judge_performance(run, spec.thresholds_for(self.scenario))
        from pytest_mlperf.system import describe_system

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
        )
        self._done = _Done(run=run, verdict=verdict, record=record)

    def _judge_accuracy(self, run: Any) -> tuple[Verdict, Accuracy]:
        from pytest_mlperf.verdict import judge_accuracy

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
