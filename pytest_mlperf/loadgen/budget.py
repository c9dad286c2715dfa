"""How long one loadgen run may take, from its effective TestSettings.

Two figures per run:

- ``schedule_s``: what loadgen's own schedule makes the run last however fast the engine is
  (Server: ``max(min_duration, queries / server_target_qps)``; SingleStream performance:
  ``min_duration``; Offline: nothing). A time limit below it can only fail, and a run stopped
  before its schedule ends still lasts until it does (loadgen keeps issuing), so such a limit
  is refused before the run starts.
- ``timeout_s``, the default limit: twice what the settings lead one to expect, plus
  :data:`MARGIN_S`. Where the settings state no rate (Offline's ``offline_expected_qps`` is a
  claim, SingleStream's latency is the engine's), an engine is allowed
  :data:`SLOWEST_SAMPLE_S` per sample. Since the default is never below the schedule, a run
  that reaches it has issued everything, and answering what is left ends it at once.

Before the run the budget is estimated from the TestSettings (:func:`run_budget`); loadgen then
logs what it really laid out (``generated_query_count``, ``generated_query_duration``,
``effective_min_query_count``: it rounds counts up to whole passes over the samples, and more),
and :func:`logged_budget` makes the default limit from those, half a second into the run.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from pytest_mlperf.core.vocabulary import Mode, Scenario

#: added to every default limit: loadgen's start and end, the last queries' generation
MARGIN_S = 120.0
#: the slowest engine the default allows for where the settings state no rate, per sample
SLOWEST_SAMPLE_S = 1.0


@dataclass(frozen=True)
class RunBudget:
    schedule_s: float
    expected_s: float
    #: how ``expected_s`` follows from the settings, for messages
    basis: str
    #: the queries the run issues, where loadgen's detail log has said
    queries: int | None = None

    @property
    def timeout_s(self) -> float:
        """The default limit: ``2 x expected + MARGIN_S``."""
        return math.ceil(2 * self.expected_s + MARGIN_S)


def run_budget(settings: Any, scenario: Scenario, mode: Mode, total_count: int) -> RunBudget:
    """The budget of a run with loadgen ``settings`` (a built ``TestSettings``) over a QSL of
    ``total_count`` samples."""
    min_duration_s = settings.min_duration_ms / 1000
    samples = total_count
    if settings.accuracy_sample_count_override:
        samples = min(samples, settings.accuracy_sample_count_override)
    if scenario.loadgen_name == "Server":
        qps = settings.server_target_qps
        if mode is Mode.ACCURACY:
            schedule = samples / qps
            return RunBudget(schedule, schedule, f"{samples} samples at server_target_qps {qps:g}")
        queries = performance_queries(settings, scenario)
        schedule = queries / qps
        return RunBudget(schedule, schedule,
                         f"{queries} queries at server_target_qps {qps:g} "
                         f"(min_query_count {settings.min_query_count}, min_duration {min_duration_s:g} s)")
    if scenario is Scenario.SINGLE_STREAM:
        if mode is Mode.ACCURACY:
            return _single_stream(samples, 0.0)
        return _single_stream(performance_queries(settings, scenario), min_duration_s)
    # Offline: one query of every sample; the run lasts as long as the engine takes.
    if mode is Mode.PERFORMANCE:
        samples = max(settings.min_query_count,
                      math.ceil(settings.offline_expected_qps * min_duration_s))
    qps = settings.offline_expected_qps
    slowest = samples * SLOWEST_SAMPLE_S
    if qps > 0 and samples / qps < slowest:
        return RunBudget(0.0, samples / qps, f"{samples} samples at offline_expected_qps {qps:g}")
    return RunBudget(0.0, slowest, f"{samples} samples at {SLOWEST_SAMPLE_S:g} s each at most")


def performance_queries(settings: Any, scenario: Scenario) -> int:
    """The fewest queries loadgen lays out for a Server, Interactive or SingleStream performance
    run: ``min_query_count``, or ``min_duration``'s worth at the target rate (SingleStream: at the
    expected latency) when that is more, in whole passes over the samples. (loadgen may lay
    out more: the detail log's ``generated_query_count`` says, see :func:`logged_budget`.)"""
    min_duration_s = settings.min_duration_ms / 1000
    if scenario is Scenario.SINGLE_STREAM:
        at_rate = math.ceil(min_duration_s / (settings.single_stream_expected_latency_ns / 1e9))
    else:
        at_rate = math.ceil(settings.server_target_qps * min_duration_s)
    return whole_passes(settings, max(settings.min_query_count, at_rate))


def whole_passes(settings: Any, queries: int) -> int:
    """With ``sample_concatenate_permutation`` (llama3.1-8b's mlperf.conf) loadgen issues every
    performance sample once per pass and rounds the query count up to whole passes."""
    per_pass = settings.performance_sample_count_override
    if getattr(settings, "sample_concatenate_permutation", False) and per_pass > 0:
        return math.ceil(queries / per_pass) * per_pass
    return queries


def _single_stream(queries: int, min_duration_s: float) -> RunBudget:
    return RunBudget(min_duration_s, max(min_duration_s, queries * SLOWEST_SAMPLE_S),
                     f"{queries} queries one at a time, {SLOWEST_SAMPLE_S:g} s each at most")


def logged_budget(log: Any, scenario: Scenario, mode: Mode) -> RunBudget | None:
    """The budget from what loadgen logged it laid out for this run (a
    :class:`~pytest_mlperf.loadgen.logs.DetailLog` read while it runs), or None before it has."""
    queries = log.get("generated_query_count")
    samples_per_query = log.get("generated_samples_per_query")
    duration_ns = log.get("generated_query_duration")
    if not all(isinstance(v, (int, float)) for v in (queries, samples_per_query, duration_ns)):
        return None
    min_duration_s = (log.get("effective_min_duration_ms") or 0) / 1000
    if scenario.loadgen_name == "Server":
        schedule = duration_ns / 1e9
        return RunBudget(schedule, schedule, f"loadgen's schedule: {queries:.0f} queries over {schedule:.0f} s",
                         int(queries))
    if scenario is Scenario.SINGLE_STREAM:
        needed = log.get("effective_min_query_count") if mode is Mode.PERFORMANCE else queries
        needed = min(queries, needed) if isinstance(needed, (int, float)) else queries
        return dataclasses.replace(_single_stream(int(needed), min_duration_s if mode is Mode.PERFORMANCE else 0.0),
                                   queries=int(queries))
    samples = int(queries * samples_per_query)
    qps = log.get("effective_target_qps")
    slowest = samples * SLOWEST_SAMPLE_S
    if isinstance(qps, (int, float)) and qps > 0 and samples / qps < slowest:
        return RunBudget(0.0, samples / qps, f"{samples} samples at offline_expected_qps {qps:g}")
    return RunBudget(0.0, slowest, f"{samples} samples at {SLOWEST_SAMPLE_S:g} s each at most")


def check_limit(budget: RunBudget, timeout_s: float, source: str) -> str | None:
    """Why a limit of ``timeout_s`` cannot fit this run, or None."""
    if timeout_s >= budget.schedule_s:
        return None
    return (f"{source}={timeout_s:g} s is shorter than this run's schedule, which loadgen keeps "
            f"however fast the engine answers ({budget.schedule_s:.0f} s: {budget.basis}); "
            f"raise {source}, or shorten the run (min_duration_ms, min_query_count, a higher "
            "server_target_qps)")
