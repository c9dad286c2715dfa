"""Comparisons of records: bounds parsed like pytest-benchmark's, each figure's direction,
what makes two records comparable, and which stored record a test is compared with."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from pytest_mlperf.core.record import (
    Accuracy,
    BenchmarkRecord,
    DatasetInfo,
    Device,
    Distribution,
    Figures,
    PeakSearch,
    Run,
    System,
    Timings,
    Verdict,
)
from pytest_mlperf.gate import compare


def _record(tokens: float = 100.0, ttft_ms: float = 50.0, **changes) -> BenchmarkRecord:
    record = BenchmarkRecord(
        benchmark="llama3.1-8b", scenario="Server", mode="performance", profile="quick",
        system=System(backend="vllm", model="m", engine_args={"max_num_seqs": 64},
                      device=Device(cpu="AMD EPYC 7B13", cpu_cores=16, gpus=("NVIDIA H200",))),
        run=Run(outdir="o", validity="VALID", settings={"target_qps": 40, "test_mode": "PerformanceOnly"}),
        verdict=Verdict(True), dataset=DatasetInfo(path="d", sha256="abc", samples=256),
        figures=Figures(tokens_per_second=tokens, ttft_ns=Distribution(p99=ttft_ms * 1e6)),
        accuracy=Accuracy(rouge1=40.0), nodeid="t.py::t[Server-performance]",
    )
    return dataclasses.replace(record, **changes)


@pytest.mark.parametrize(("text", "old", "new", "regressed"), [
    ("tokens_per_second:5%", 100.0, 95.0, False),   # exactly at the bound passes
    ("tokens_per_second:5%", 100.0, 94.9, True),
    ("tokens_per_second:5%", 100.0, 300.0, False),  # faster is never a regression
    ("ttft_p99:10%", 50.0, 55.0, False),            # the alias of ttft_p99_ms; lower is better
    ("ttft_p99_ms:10%", 50.0, 55.1, True),
    ("ttft_p99_ms:10%", 50.0, 1.0, False),
    ("rouge1:0.5", 40.0, 39.5, False),              # no %: in the figure's unit
    ("rouge1:0.5", 40.0, 39.4, True),
    ("rouge1:0.5%", 40.0, 39.79, True),
    ("peak_qps:0%", 44.0, 43.9, True),
])
def test_bounds_know_which_way_is_worse(text, old, new, regressed) -> None:
    bound = compare.parse_fail_bound(text)
    assert bound.regressed(old, new) is regressed


@pytest.mark.parametrize(("text", "message"), [
    ("tokens", "expected FIGURE:BOUND"),
    ("speed:5%", "FIGURE one of tokens_per_second, samples_per_second, ttft_p99_ms"),
    ("tokens_per_second:-5%", "is not a number >= 0"),
    ("tokens_per_second:nan", "is not a number >= 0"),
    ("tokens_per_second:", "is not a number >= 0"),
])
def test_bad_bounds_name_the_valid_figures(text, message) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        compare.parse_fail_bound(text)


def test_regression_names_old_new_and_bound() -> None:
    bound = compare.parse_fail_bound("tokens_per_second:5%")
    found = compare.compare(_record(100.0), _record(90.0), [bound], "h200x1-1/0003_abc.json")
    assert found.skipped is None
    assert found.regressions == (
        "tokens_per_second regressed: 90 tokens/s < 95 (stored 100 tokens/s in h200x1-1/0003_abc.json; "
        "--mlperf-compare-fail=tokens_per_second:5%)",)
    assert "tokens_per_second 100 -> 90 tokens/s (-10.0%)" in [str(d) for d in found.deltas]
    assert "ttft_p99_ms 50 -> 50 ms (+0.0%)" in [str(d) for d in found.deltas]


def test_a_bound_on_a_run_too_short_to_hold_it_says_so() -> None:
    """On an H200 the embedded model's sub-second Offline run moved -45 % with nothing changed:
    a performance bound on such a run is noted (a warning, and in the regression message)."""
    bound = compare.parse_fail_bound("tokens_per_second:5%")
    short = _record(90.0, timings=Timings(run_s=0.8))
    found = compare.compare(_record(100.0, timings=Timings(run_s=0.5)), short, [bound], "s")
    (note,) = found.notes
    assert note.startswith("tokens_per_second is gated on a 0.5 s run (under 5 s")
    assert "docs/ci.md" in note and found.regressions[0].endswith(f"; note: {note}")
    long_runs = compare.compare(_record(100.0, timings=Timings(run_s=9.0)),
                                _record(99.0, timings=Timings(run_s=9.1)), [bound], "s")
    assert long_runs.notes == () and long_runs.regressions == ()
    accuracy = dataclasses.replace(short, mode="accuracy")
    assert compare.compare(dataclasses.replace(_record(), mode="accuracy"), accuracy,
                           [compare.parse_fail_bound("rouge1:0.5")], "s").notes == ()


@pytest.mark.parametrize(("change", "reason"), [
    (lambda r: dataclasses.replace(r, system=dataclasses.replace(r.system, device=Device(cpu="x", cpu_cores=2))),
     "stored on other hardware"),
    (lambda r: dataclasses.replace(r, system=dataclasses.replace(r.system, engine_args={"max_num_seqs": 8})),
     "other engine arguments ({'max_num_seqs': 64} then, {'max_num_seqs': 8} now)"),
    (lambda r: dataclasses.replace(r, profile="official"), "other profile (quick then, official now)"),
    (lambda r: dataclasses.replace(r, dataset=DatasetInfo(path="d", sha256="other", samples=256)), "other data set"),
    (lambda r: dataclasses.replace(r, run=dataclasses.replace(r.run, settings={"target_qps": 44})),
     "other loadgen settings (target_qps 40 -> 44)"),
])
def test_other_hardware_or_settings_are_not_compared(change, reason) -> None:
    found = compare.compare(_record(100.0), change(_record(50.0)), [compare.parse_fail_bound("tokens_per_second:5%")], "s")
    assert found.skipped is not None and reason in found.skipped
    assert not found.regressions and not found.deltas


def test_a_peak_search_may_move_the_target_qps() -> None:
    search = PeakSearch(peak_qps=44.0, invalid_qps=46.0, tolerance="5%", seconds=1.0)
    old = _record(peak=search)
    new = _record(peak=dataclasses.replace(search, peak_qps=40.0),
                  run=dataclasses.replace(old.run, settings={"target_qps": 40}))
    found = compare.compare(old, new, [compare.parse_fail_bound("peak_qps:5%")], "s")
    assert found.skipped is None
    assert found.regressions and found.regressions[0].startswith("peak_qps regressed: 40 qps < 41.8")


def test_match_prefers_the_node_id_then_a_unique_test() -> None:
    a = _record(nodeid="a.py::t[Server-performance]")
    b = _record(nodeid="b.py::t[Server-performance]", tokens=7.0)
    assert compare.match([a, b], b) is b
    renamed = _record(nodeid="c.py::t[Server-performance]")
    assert compare.match([a, b], renamed) is None  # two candidates: ambiguous
    assert compare.match([a], renamed) is a
    assert compare.match([a], dataclasses.replace(renamed, mode="accuracy")) is None
