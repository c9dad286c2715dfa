"""One benchmark run as it goes, where it runs: the status file, and the run's details.

``mlperf_runner`` makes a :class:`RunTracker` for each loadgen run and hands its ``update`` to
``run_loadgen(on_progress=...)``: about once a second the bridge's
:class:`~pytest_mlperf.loadgen.sut.Progress` becomes a :class:`~pytest_mlperf.live.status.RunStatus`
(queries done of those expected, tokens/s, elapsed and time left, running p99 TTFT/TPOT),
written atomically to the status file, and a point of the run's timeline. When the test's call
phase ends the plugin finishes the tracker: final state and verdict in the status file, and the
:class:`~pytest_mlperf.core.details.RunDetails` (timeline, per-query histograms, a few scored
samples, the run's user.conf) attached to the test report.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_mlperf.core import stash
from pytest_mlperf.core.details import Histogram, RunDetails, Sample, percentile
from pytest_mlperf.core.place import Place
from pytest_mlperf.core.vocabulary import Mode, Scenario
from pytest_mlperf.live import status as st

if TYPE_CHECKING:
    from pytest_mlperf.core.record import BenchmarkRecord
    from pytest_mlperf.loadgen.sut import Progress

#: this item's trackers, one per loadgen run (a test body may run more than one)
TRACKERS = pytest.StashKey[list["RunTracker"]]()
#: the session this process's benchmarks belong to (the controller's, also on xdist workers)
SESSION = pytest.StashKey[st.SessionInfo]()
#: seconds between status updates while a run goes on
UPDATE_INTERVAL_S = 1.0
#: scored samples shown per accuracy run
SAMPLES_SHOWN = 3
PROMPT_EXCERPT = 400


@dataclass(frozen=True)
class Expectation:
    """How long a run will be: the queries it completes, and the least time it takes."""

    queries: int | None = None
    min_queries: int = 0
    min_duration_s: float = 0.0
    #: Offline sends every query at once: the first issue tells the total
    total_from_issue: bool = False


def expectation(plan: Any, mode: Mode) -> Expectation:
    """What loadgen will do with ``plan``'s settings in ``mode``."""
    if mode is Mode.ACCURACY:
        return Expectation(queries=plan.total_count, total_from_issue=plan.scenario is Scenario.OFFLINE)
    settings = plan.build(mode)
    min_queries = int(settings.min_query_count)
    duration = settings.min_duration_ms / 1000.0
    if plan.scenario is Scenario.OFFLINE:
        return Expectation(min_queries=min_queries, total_from_issue=True)
    from pytest_mlperf.loadgen.budget import performance_queries

    return Expectation(queries=performance_queries(settings, plan.scenario),
                       min_queries=min_queries, min_duration_s=duration)


def _p99_ms(values: tuple[float, ...]) -> float | None:
    p99 = percentile(sorted(values), 99)
    return None if p99 is None else round(p99 * 1000.0, 3)


class RunTracker:
    """The status file and details of one loadgen run (thread-safe: ``update`` runs on the
    runner's progress thread)."""

    interval_s = UPDATE_INTERVAL_S

    def __init__(self, *, output: Path, session: st.SessionInfo, nodeid: str, benchmark: str,
                 scenario: Scenario, mode: Mode, outdir: Path, expected: Expectation,
                 user_conf: str = "", resolve: Callable[[str], Any] | None = None,
                 place: Place | None = None) -> None:
        self.path = st.status_path(output, nodeid)
        self.scenario, self.mode, self.expected = scenario, mode, expected
        self.user_conf = user_conf
        self._resolve = resolve
        self._output = Path(output)
        self._session = session
        self._session_written = False
        self._lock = threading.Lock()
        self._last: Progress | None = None
        self._timeline: list[tuple[float, int, int, int]] = [(0.0, 0, 0, 0)]
        now = time.time()
        self._status = st.RunStatus(
            session=session.id, nodeid=nodeid, benchmark=benchmark, scenario=scenario.value,
            mode=mode.value, state=st.RUNNING, outdir=str(outdir), expected=expected.queries,
            pid=os.getpid(), host=socket.gethostname(),
            worker=os.environ.get("PYTEST_XDIST_WORKER", "main"), started=now, updated=now,
            place=place.to_json() if place is not None else None,
        )
        self._write()

    @property
    def status(self) -> st.RunStatus:
        return self._status

    def _write(self) -> None:
        try:
            if not self._session_written:
                # The first run of a session says which session the status files belong to.
                info = st.read_session(self._output)
                if info is None or info.id != self._session.id:
                    st.write_session(self._output, self._session)
                self._session_written = True
            st.write_status(self.path, self._status)
        except OSError:
            pass  # a monitor's file must never fail the benchmark

    # -- while loadgen runs (the runner's progress thread) ---------------------------------------
    def update(self, progress: Progress) -> None:
        with self._lock:
            self._last = progress
            self._timeline.append((round(progress.elapsed_s, 3), progress.issued,
                                   progress.completed, progress.output_tokens))
            self._status = replace(self._status, **self._figures(progress), updated=time.time())
            self._write()

    def _figures(self, progress: Progress) -> dict[str, Any]:
        exp = self.expected
        expected = exp.queries
        if progress.laid_out:  # loadgen's own count, once its detail log says
            expected = max(progress.laid_out, progress.issued)
        elif exp.total_from_issue and progress.issued:
            expected = max(progress.issued, expected or 0)
        elif expected is None and exp.min_queries:
            expected = max(exp.min_queries, progress.completed)
        elif expected is not None:
            expected = max(expected, progress.issued)  # a Server schedule is random around it
        rate = progress.completed / progress.elapsed_s if progress.elapsed_s > 0 else 0.0
        eta = None
        if expected is not None and rate > 0:
            eta = max(0.0, (expected - progress.completed) / rate)
        if exp.min_duration_s:
            by_time = max(0.0, exp.min_duration_s - progress.elapsed_s)
            eta = by_time if eta is None else max(eta, by_time)
        streaming = self.scenario.streaming
        return {
            "issued": progress.issued, "completed": progress.completed, "expected": expected,
            "output_tokens": progress.output_tokens, "elapsed_s": round(progress.elapsed_s, 3),
            "eta_s": None if eta is None else round(eta, 1),
            "tokens_per_second": round(progress.tokens_per_second, 3),
            "ttft_p99_ms": _p99_ms(progress.ttft_s) if streaming else None,
            "tpot_p99_ms": _p99_ms(progress.tpot_s) if streaming else None,
        }

    # -- after loadgen returns, and when the test's call phase ends -----------------------------
    def run_done(self) -> None:
        with self._lock:
            self._status = replace(self._status, state=st.SCORING, eta_s=None, updated=time.time())
            self._write()

    def finish(self, *, passed: bool, reason: str | None, record: BenchmarkRecord | None) -> None:
        with self._lock:
            changes: dict[str, Any] = {"state": st.PASSED if passed else st.FAILED,
                                       "reason": None if passed else reason,
                                       "eta_s": None, "updated": time.time()}
            if record is not None:
                if record.figures.tokens_per_second is not None:
                    changes["tokens_per_second"] = record.figures.tokens_per_second
                for key, dist in (("ttft_p99_ms", record.figures.ttft_ns),
                                  ("tpot_p99_ms", record.figures.tpot_ns)):
                    if dist.p99 is not None:
                        changes[key] = round(dist.p99 / 1e6, 3)
            self._status = replace(self._status, **changes)
            self._write()

    def details(self, record: BenchmarkRecord | None = None) -> RunDetails:
        last = self._last
        samples: tuple[Sample, ...] = ()
        if record is not None and record.mode == Mode.ACCURACY.value and self._resolve is not None:
            samples = scored_samples(Path(record.run.outdir), self._resolve)
        return RunDetails(
            timeline=tuple(self._timeline),
            ttft_ms=Histogram.of([v * 1000.0 for v in last.ttft_s]) if last and self.scenario.streaming else None,
            tpot_ms=Histogram.of([v * 1000.0 for v in last.tpot_s]) if last and self.scenario.streaming else None,
            samples=samples, user_conf=self.user_conf, status_file=str(self.path),
        )


def scored_samples(outdir: Path, resolve: Callable[[str], Any], count: int = SAMPLES_SHOWN) -> tuple[Sample, ...]:
    """The first ``count`` samples of an accuracy log, decoded and scored as the recipe does."""
    log = outdir / "mlperf_log_accuracy.json"
    if not log.is_file():
        return ()
    try:
        from pytest_mlperf.accuracy.log import decode_texts, read_accuracy_log
        from pytest_mlperf.accuracy.recipe import score_chunk

        dataset = resolve("mlperf_dataset")
        tokenizer = resolve("mlperf_tokenizer")
        logged = read_accuracy_log(log, n_references=len(dataset.records))[:count]
        predictions = decode_texts(log, logged, tokenizer)
        records = [dataset.records[s.qsl_idx] for s in logged]
        scores = score_chunk([(p, r.output) for p, r in zip(predictions, records, strict=True)])
    except Exception:  # noqa: BLE001 - samples are an illustration; never fail a test for them
        return ()
    out = []
    for sample, prediction, rec, score in zip(logged, predictions, records, scores, strict=True):
        prompt = rec.input if len(rec.input) <= PROMPT_EXCERPT else rec.input[:PROMPT_EXCERPT] + "…"
        out.append(Sample(qsl_idx=sample.qsl_idx, prompt=prompt, prediction=prediction,
                          reference=rec.output, rouge1=round(score[0] * 100, 2),
                          rouge2=round(score[1] * 100, 2), rougeL=round(score[2] * 100, 2),
                          rougeLsum=round(score[3] * 100, 2)))
    return tuple(out)


# -- what the fixtures and the plugin call -------------------------------------------------------

def session_info(config: pytest.Config) -> st.SessionInfo:
    """This session's info: made on the controller, handed to xdist workers."""
    info = config.stash.get(SESSION, None)
    if info is None:
        given = getattr(config, "workerinput", {}).get("mlperf_session")
        command = " ".join(["pytest", *config.invocation_params.args])
        info = st.SessionInfo(**given) if given else st.SessionInfo.new(command)
        config.stash[SESSION] = info
    return info


def track_run(request: pytest.FixtureRequest, plan: Any, mode: Mode, outdir: Path) -> RunTracker:
    """A tracker for the run of ``request``'s test into ``outdir`` (registered on the item)."""
    options = request.getfixturevalue("mlperf_options")
    try:
        expected = expectation(plan, mode)
    except Exception:  # noqa: BLE001 - the run itself reports bad settings, with its own message
        expected = Expectation()
    try:
        from pytest_mlperf.submission.user_conf import user_conf_for

        user_conf = user_conf_for(plan, mode)
    except Exception:  # noqa: BLE001 - as above
        user_conf = ""
    tracker = RunTracker(
        output=options.output, session=session_info(request.config), nodeid=request.node.nodeid,
        benchmark=plan.benchmark, scenario=plan.scenario, mode=mode, outdir=outdir,
        expected=expected, user_conf=user_conf, resolve=request.getfixturevalue,
        place=request.node.stash.get(stash.PLACE, None),
    )
    trackers = request.node.stash.setdefault(TRACKERS, [])
    trackers.append(tracker)
    return tracker


def engine_starting(item: pytest.Item) -> None:
    """The test's status file while its engine loads (:data:`stash.ON_ENGINE_START`): state
    ``starting``, so the live line and ``watch`` show the wait (minutes on a GPU) and how long
    it has been; the run's tracker replaces it when loadgen starts."""
    options = item.config.stash[stash.OPTIONS]
    session = session_info(item.config)
    spec = item.stash.get(stash.SPEC, None)
    scenario = getattr(item, "callspec", None)
    params = scenario.params if scenario is not None else {}
    now = time.time()
    place = item.stash.get(stash.PLACE, None)
    status = st.RunStatus(
        session=session.id, nodeid=item.nodeid, benchmark=getattr(spec, "benchmark", ""),
        scenario=getattr(params.get("mlperf_scenario"), "value", ""),
        mode=getattr(params.get("mlperf_mode"), "value", ""), state=st.STARTING,
        pid=os.getpid(), host=socket.gethostname(),
        worker=os.environ.get("PYTEST_XDIST_WORKER", "main"), started=now, updated=now,
        place=place.to_json() if place is not None else None,
    )
    st.write_status(st.status_path(options.output, item.nodeid), status)


def finish_starting(item: pytest.Item, *, passed: bool, reason: str | None) -> None:
    """A test that ended before any loadgen run (its engine failed to start, say): its
    ``starting`` status file gets the test's final state, so nothing shows it loading forever."""
    output = item.config.stash[stash.OPTIONS].output
    path = st.status_path(output, item.nodeid)
    found = st.read_statuses(output, session_info(item.config).id) if path.is_file() else []
    status = next((s for s in found if s.nodeid == item.nodeid and s.state == st.STARTING), None)
    if status is None:
        return
    now = time.time()
    st.write_status(path, replace(status, state=st.PASSED if passed else st.FAILED,
                                  reason=None if passed else reason, elapsed_s=round(now - status.started, 3),
                                  updated=now))


def number_tests(items: list[pytest.Item]) -> list[str]:
    """Give each benchmark test its place (test k of N) and return their node ids, in order.
    Every process numbers the same collection (xdist workers collect it all)."""
    benchmarks = [item for item in items if stash.SPEC in item.stash
                  and "mlperf_scenario" in getattr(getattr(item, "callspec", None), "params", {})]
    for k, item in enumerate(benchmarks, 1):
        stash.update_place(item, test=k, tests=len(benchmarks))
    return [item.nodeid for item in benchmarks]
