"""Sanity ranges for every loadgen TestSettings field, checked before loadgen sees a value.

loadgen takes what it is given: ``server_target_qps = 0`` schedules queries until the kernel
kills the process, ``min_duration_ms`` in the billions runs for weeks,
``server_num_issue_query_threads = 1`` waits for issue threads nobody registers. Every field
has a range here (a test checks that none is missing), and the settings of a whole run are
checked together (:func:`check_run`) for what no single value shows: a schedule of more
queries than memory holds, or a maximum below its minimum.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: loadgen keeps every query of a run in memory (several hundred bytes each) and lays the whole
#: schedule out before the first query: more than this is a typo, not a benchmark
MAX_QUERIES = 10_000_000
#: 24 hours: the official runs last 10 minutes
MAX_DURATION_MS = 24 * 3600 * 1000
_MAX_NS = MAX_DURATION_MS * 1_000_000
_U64 = 2**64 - 1


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    #: the low bound itself is excluded (a rate or latency must be positive)
    low_open: bool = False
    high_open: bool = False
    why: str = ""

    def problem(self, value: float) -> str | None:
        if isinstance(value, float) and not math.isfinite(value):
            return "must be a finite number"
        below = value <= self.low if self.low_open else value < self.low
        above = value >= self.high if self.high_open else value > self.high
        if not (below or above):
            return None
        low = f"{'>' if self.low_open else '>='} {self.low:g}"
        high = f"{'<' if self.high_open else '<='} {self.high:g}"
        return f"must be {low} and {high}" + (f" ({self.why})" if self.why else "")


_SEED = Range(0, _U64)
_COUNT = Range(0, MAX_QUERIES, why="loadgen keeps every query in memory")
_PERCENTILE = Range(0, 1, low_open=True, high_open=True, why="a fraction, e.g. 0.99")
_LATENCY_NS = Range(0, _MAX_NS, low_open=True, why="nanoseconds")
_RATE = Range(0, 1_000_000, low_open=True, why="queries per second; 0 schedules queries without end")

#: every TestSettings field loadgen 6.0 has (bools need no range: their type is checked)
RANGES: Mapping[str, Range | None] = {
    "accuracy_log_probability": Range(0, 1, why="a probability"),
    "accuracy_log_rng_seed": _SEED,
    "accuracy_log_sampling_target": _COUNT,
    "accuracy_sample_count_override": _COUNT,
    "infer_token_latencies": None,
    "max_duration_ms": Range(0, MAX_DURATION_MS, why="0: no limit; at most 24 hours"),
    "max_query_count": _COUNT,
    "min_duration_ms": Range(0, MAX_DURATION_MS, why="at most 24 hours; official runs: 600000"),
    "min_query_count": _COUNT,
    "multi_stream_expected_latency_ns": _LATENCY_NS,
    "multi_stream_samples_per_query": Range(1, 1_000_000),
    "multi_stream_target_latency_percentile": _PERCENTILE,
    "offline_expected_qps": _RATE,
    "performance_issue_same": None,
    "performance_issue_same_index": _COUNT,
    "performance_issue_unique": None,
    "performance_sample_count_override": _COUNT,
    "print_timestamps": None,
    "qsl_rng_seed": _SEED,
    "sample_concatenate_permutation": None,
    "sample_index_rng_seed": _SEED,
    "schedule_rng_seed": _SEED,
    "server_coalesce_queries": None,
    "server_find_peak_qps_boundary_step_size": Range(0, 1_000_000, low_open=True),
    "server_find_peak_qps_decimals_of_precision": Range(0, 10),
    "server_max_async_queries": _COUNT,
    "server_num_issue_query_threads": Range(
        0, 0, why="the plugin's bridge registers no issue threads; loadgen would wait for them"),
    "server_target_latency_ns": Range(0, _MAX_NS, why="nanoseconds; 0 where TTFT/TPOT are the limits"),
    "server_target_latency_percentile": _PERCENTILE,
    "server_target_qps": _RATE,
    "single_stream_expected_latency_ns": _LATENCY_NS,
    "single_stream_target_latency_percentile": _PERCENTILE,
    "test05": None,
    "test05_qsl_rng_seed": _SEED,
    "test05_sample_index_rng_seed": _SEED,
    "test05_schedule_rng_seed": _SEED,
    "token_latency_scaling_factor": Range(0, 1_000_000),
    "tpot_latency": _LATENCY_NS,
    "ttft_latency": _LATENCY_NS,
    "use_token_latencies": None,
}


def value_problem(name: str, value: Any) -> str | None:
    """Why ``value`` is out of range for field ``name`` (already of the field's type), or None."""
    bound = RANGES.get(name)
    if bound is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return bound.problem(value)


def check_run(values: Mapping[str, Any], loadgen_scenario: str, *, total_count: int,
              performance_count: int, source: Callable[[str], str]) -> list[str]:
    """What makes a whole run's settings unworkable, each naming its fields and their sources
    (``source(field)``). ``values``: every field of the built TestSettings."""
    problems = []
    mine = "Interactive" if loadgen_scenario == "Server" else loadgen_scenario
    for name, value in values.items():
        readers = scenarios_reading(name)
        if readers is not None and mine not in readers:
            continue  # loadgen reads Server's keys from a conf file in every scenario
        why = value_problem(name, value)
        if why:
            problems.append(f"{name} = {value!r} ({source(name)}) {why}")
    if problems:
        return problems

    def both(a: str, b: str) -> str:
        return f"{a} = {values[a]:g} ({source(a)}), {b} = {values[b]:g} ({source(b)})"

    if values["max_duration_ms"] and values["max_duration_ms"] < values["min_duration_ms"]:
        problems.append(f"{both('max_duration_ms', 'min_duration_ms')}: loadgen stops at the "
                        "maximum, before the run can be VALID")
    if values["max_query_count"] and values["max_query_count"] < values["min_query_count"]:
        problems.append(f"{both('max_query_count', 'min_query_count')}: loadgen stops at the "
                        "maximum, before the run can be VALID")
    min_duration_s = values["min_duration_ms"] / 1000
    if loadgen_scenario == "Server":
        qps = values["server_target_qps"]
        queries = max(values["min_query_count"], qps * min_duration_s)
        if queries > MAX_QUERIES:
            problems.append(f"{both('server_target_qps', 'min_duration_ms')}: the schedule would "
                            f"hold {queries:,.0f} queries (at most {MAX_QUERIES:,})")
        elif queries / qps * 1000 > MAX_DURATION_MS:
            problems.append(f"{both('min_query_count', 'server_target_qps')}: the schedule would "
                            f"last {queries / qps / 3600:,.1f} hours (at most 24)")
    elif loadgen_scenario == "Offline":
        samples = max(values["min_query_count"], values["offline_expected_qps"] * min_duration_s)
        if samples > MAX_QUERIES:
            problems.append(f"{both('offline_expected_qps', 'min_duration_ms')}: the query would "
                            f"hold {samples:,.0f} samples (at most {MAX_QUERIES:,})")
    elif loadgen_scenario == "SingleStream":
        latency_s = values["single_stream_expected_latency_ns"] / 1e9
        queries = max(values["min_query_count"], min_duration_s / latency_s)
        if queries > MAX_QUERIES:
            problems.append(f"{both('single_stream_expected_latency_ns', 'min_duration_ms')}: "
                            f"loadgen would lay out {queries:,.0f} queries (at most {MAX_QUERIES:,})")
    same_index = values["performance_issue_same_index"]
    if values["performance_issue_same"] and same_index >= performance_count:
        problems.append(f"performance_issue_same_index = {same_index} ({source('performance_issue_same_index')}) "
                        f"is not a sample of the QSL's {performance_count} performance samples")
    accuracy = values["accuracy_sample_count_override"]
    if accuracy > total_count:
        problems.append(f"accuracy_sample_count_override = {accuracy} ({source('accuracy_sample_count_override')}) "
                        f"is more than the QSL's {total_count} samples")
    return problems


#: field prefixes that only some scenarios read (by the plugin's scenario names)
_SCENARIO_PREFIXES = {
    "server_": ("Server", "Interactive"),
    "offline_": ("Offline",),
    "single_stream_": ("SingleStream",),
    "multi_stream_": (),
}
_SCENARIO_FIELDS = {"ttft_latency": ("Server", "Interactive", "SingleStream"),
                    "tpot_latency": ("Server", "Interactive", "SingleStream")}


def scenarios_reading(name: str) -> tuple[str, ...] | None:
    """The scenarios whose runs read field ``name`` (None: every scenario)."""
    if name in _SCENARIO_FIELDS:
        return _SCENARIO_FIELDS[name]
    return next((s for prefix, s in _SCENARIO_PREFIXES.items() if name.startswith(prefix)), None)


def unread_problem(values: Mapping[str, Any], scenarios: tuple[str, ...], source: str) -> str | None:
    """Settings in ``values`` that none of ``scenarios`` reads (they would change nothing)."""
    unread = []
    for name in values:
        readers = scenarios_reading(name)
        if readers is not None and not set(readers) & set(scenarios):
            where = f"{', '.join(readers)} only" if readers else "MultiStream only, which the plugin does not run"
            unread.append(f"{name} (read by {where})")
    if not unread:
        return None
    it = "it" if len(unread) == 1 else "they"
    return (f"{source}: {'; '.join(unread)}: {it} would change nothing, since none of the "
            f"scenarios here ({', '.join(scenarios)}) reads {'it' if it == 'it' else 'them'}")
