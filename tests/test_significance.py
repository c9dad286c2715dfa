"""The statistical gate's rule (asv's): exact Mann-Whitney when the runs are enough to reach the
level, else whether the ranges overlap; and how ``FIGURE:BOUND:mwu`` parses."""

from __future__ import annotations

import argparse

import pytest

from pytest_mlperf.gate.compare import parse_fail_bound
from pytest_mlperf.gate.significance import mann_whitney_p, significant


def test_exact_p_of_three_against_three() -> None:
    # all three runs below all three stored: 1 arrangement of C(6,3) = 20
    assert mann_whitney_p([90, 91, 92], [100, 101, 102], higher_is_better=True) == pytest.approx(1 / 20)
    # one of today's runs among the stored ones: no longer the most extreme
    assert mann_whitney_p([90, 91, 101.5], [100, 101, 102], higher_is_better=True) == pytest.approx(4 / 20)
    # latency: higher is worse
    assert mann_whitney_p([110, 111, 112], [100, 101, 102], higher_is_better=False) == pytest.approx(1 / 20)
    assert mann_whitney_p([110, 111, 112], [100, 101, 102], higher_is_better=True) == pytest.approx(1.0)


def test_large_samples_use_the_normal_approximation() -> None:
    worse = [float(x) for x in range(12)]
    better = [float(x) + 20 for x in range(12)]
    assert mann_whitney_p(worse, better, True) < 1e-4
    assert mann_whitney_p(better, worse, True) > 0.99


def test_significance_falls_back_to_ranges_with_too_few_runs() -> None:
    sig, how = significant([90, 91, 92], [100, 101, 102], True)
    assert sig and "p=0.05" in how
    sig, how = significant([90, 91, 101.5], [100, 101, 102], True)
    assert not sig and "p=0.2" in how
    sig, how = significant([90], [100], True)  # one run each: the plain bound decides
    assert sig and "ranges apart" in how
    sig, how = significant([90, 101], [100], True)
    assert not sig and "ranges overlap" in how


def test_mwu_suffix_parses_and_prints_back() -> None:
    bound = parse_fail_bound("tokens_per_second:5%:mwu")
    assert bound.alpha == 0.05 and str(bound) == "tokens_per_second:5%:mwu"
    assert str(parse_fail_bound("ttft_p99_ms:10%:mwu=0.01")) == "ttft_p99_ms:10%:mwu=0.01"
    for bad in ("tokens_per_second:5%:t", "tokens_per_second:5%:mwu=2"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected :mwu or :mwu=ALPHA"):
            parse_fail_bound(bad)
