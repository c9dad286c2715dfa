"""Baselines and check(): the submission checker's comparisons, bound for bound."""

from __future__ import annotations

import math

import pytest

from pytest_mlperf.accuracy import TARGETS, AccuracyScores, Baseline, Miss, check


def _scores(**overrides) -> AccuracyScores:
    base = {"rouge1": 50.0, "rouge2": 30.0, "rougeL": 40.0, "rougeLsum": 45.0,
            "gen_len": 1000, "gen_num": 10, "gen_tok_len": 1000}
    base.update(overrides)
    return AccuracyScores(**base)


# tools/submission/submission_checker/constants.py, "accuracy-target" and "accuracy-upper-limit"
CHECKER = {
    "llama3.1-8b": {"rouge1": 38.7792 * 0.99, "rouge2": 15.9075 * 0.99,
                    "rougeL": 24.4957 * 0.99, "rougeLsum": 35.793 * 0.99,
                    "gen_len": (8167644 * 0.9, 8167644 * 1.1)},
    "llama3.1-8b-edge": {"rouge1": 39.06 * 0.99, "rouge2": 16.1147 * 0.99,
                         "rougeL": 24.6375 * 0.99, "rougeLsum": 36.124 * 0.99,
                         "gen_len": (3051113 * 0.9, 3051113 * 1.1)},
    "llama2-70b-99": {"rouge1": 44.4312 * 0.99, "rouge2": 22.0352 * 0.99,
                      "rougeL": 28.6162 * 0.99,
                      "tokens_per_sample": (294.45 * 0.9, 294.45 * 1.1)},
    "llama2-70b-99.9": {"rouge1": 44.4312 * 0.999, "rouge2": 22.0352 * 0.999,
                        "rougeL": 28.6162 * 0.999,
                        "tokens_per_sample": (294.45 * 0.9, 294.45 * 1.1)},
}


def test_targets_cover_the_checker_benchmarks():
    assert set(TARGETS) == set(CHECKER)
    assert all(name == baseline.name for name, baseline in TARGETS.items())


@pytest.mark.parametrize("name", sorted(CHECKER))
def test_bounds_equal_the_checker(name):
    baseline = TARGETS[name]
    checked = {m for m in ("rouge1", "rouge2", "rougeL", "rougeLsum", "gen_len",
                           "tokens_per_sample") if getattr(baseline, m) is not None}
    assert checked == set(CHECKER[name])
    for metric, bound in CHECKER[name].items():
        if metric == "tokens_per_sample":
            continue  # a rounded ratio of counts: see test_tokens_per_sample_window
        if isinstance(bound, tuple):
            low, high = bound
            assert check(_at(metric, low, name), baseline) == []
            assert check(_at(metric, high, name), baseline) == []
            below = check(_at(metric, math.nextafter(low, 0), name), baseline)
            above = check(_at(metric, math.nextafter(high, math.inf), name), baseline)
            assert [(m.metric, m.kind) for m in below] == [(metric, "window")]
            assert [(m.metric, m.kind) for m in above] == [(metric, "window")]
        else:
            assert check(_at(metric, bound, name), baseline) == []  # checker: value >= target
            missed = check(_at(metric, math.nextafter(bound, 0), name), baseline)
            assert [(m.metric, m.kind, m.bound) for m in missed] == [(metric, "min", bound)]


def _at(metric: str, value: float, name: str) -> AccuracyScores:
    """Scores passing every bound of ``name`` except that ``metric`` is ``value``."""
    baseline = TARGETS[name]
    fields = {k: getattr(baseline, k) or 50.0 for k in ("rouge1", "rouge2", "rougeL",
                                                        "rougeLsum")}
    fields.update(gen_num=1000, gen_len=baseline.gen_len or 1000,
                  gen_tok_len=round((baseline.tokens_per_sample or 1.0) * 1000))
    fields[metric] = value
    return AccuracyScores(**fields)


@pytest.mark.parametrize(("gen_tok_len", "passes"), [
    (265_000, False),  # 265.0 < 0.9 x 294.45 = 265.005
    (265_050, True),   # 265.1: the llama2-70b evaluation rounds to 1 decimal
    (323_849, True),   # 323.8 <= 1.1 x 294.45 = 323.895
    (323_850, False),  # 323.9
])
def test_tokens_per_sample_window(gen_tok_len, passes):
    scores = _scores(gen_num=1000, gen_tok_len=gen_tok_len, rouge1=50.0, rouge2=30.0,
                     rougeL=30.0)
    misses = check(scores, TARGETS["llama2-70b-99"])
    assert (misses == []) is passes, (scores.tokens_per_sample, misses)
    assert all(m.metric == "tokens_per_sample" for m in misses)


def test_miss_message():
    misses = check(_scores(rouge1=37.1), TARGETS["llama3.1-8b"])
    assert [str(m) for m in misses if m.metric == "rouge1"] == [
        "rouge1 37.1 < 38.3914 (0.99 x 38.7792)"]


def test_window_messages():
    low = check(_scores(gen_len=7_000_000), Baseline("b", gen_len=8167644))
    high = check(_scores(gen_len=9_000_000), Baseline("b", gen_len=8167644))
    assert str(low[0]) == "gen_len 7000000 < 7350879.6 (0.9 x 8167644)"
    assert str(high[0]) == "gen_len 9000000 > 8984408.4 (1.1 x 8167644)"


def test_message_shows_full_digits_when_four_decimals_hide_the_gap():
    miss = Miss("rouge1", 38.3914, 38.391408, "min", 0.99, 38.7792)
    assert str(miss).startswith("rouge1 38.3914 < 38.391408 ")


def test_ratio_override_and_default():
    baseline = Baseline("b", rouge1=40.0)
    assert check(_scores(rouge1=39.7), baseline) == []  # 0.99 x 40 = 39.6
    assert [m.metric for m in check(_scores(rouge1=39.7), baseline, ratio=0.999)] == ["rouge1"]
    assert check(_scores(rouge1=39.97), TARGETS["llama2-70b-99.9"], ratio=None) != []


def test_none_figures_are_not_checked():
    assert check(_scores(rouge1=0.0, gen_len=1), Baseline("nothing")) == []


def test_tokens_per_sample_needs_token_counts():
    with pytest.raises(ValueError, match="tokens_per_sample"):
        check(_scores(gen_tok_len=None), TARGETS["llama2-70b-99"])


def test_from_scores():
    scores = _scores()
    baseline = Baseline.from_scores("mine", scores, ratio=0.98)
    assert (baseline.rouge1, baseline.rouge2, baseline.rougeL, baseline.rougeLsum) == (
        scores.rouge1, scores.rouge2, scores.rougeL, scores.rougeLsum)
    assert baseline.gen_len == scores.gen_len and baseline.ratio == 0.98
    assert baseline.samples == scores.gen_num
    assert Baseline.from_scores("mine", scores, gen_len=False).gen_len is None
    assert check(scores, baseline) == []


@pytest.mark.parametrize("ratio", [0.0, -1.0, 1.5])
def test_bad_ratio(ratio):
    with pytest.raises(ValueError, match="ratio"):
        Baseline("b", rouge1=1.0, ratio=ratio)


def test_targets_know_their_data_set_size():
    # ../shared/spec/mlperf-llm.md: cnn_eval.json, sample_cnn_eval_5000.json, OpenOrca
    assert {name: t.samples for name, t in TARGETS.items()} == {
        "llama3.1-8b": 13368, "llama3.1-8b-edge": 5000,
        "llama2-70b-99": 24576, "llama2-70b-99.9": 24576}


def test_scaled_to_scales_gen_len_only():
    full = TARGETS["llama3.1-8b"]
    subset = full.scaled_to(64)
    assert subset.gen_len == round(8167644 * 64 / 13368) == 39103
    assert subset.samples == 64
    assert subset.name == "llama3.1-8b, gen_len scaled to 64 of 13,368 samples"
    assert (subset.rouge1, subset.rouge2, subset.rougeL, subset.rougeLsum, subset.ratio) == (
        full.rouge1, full.rouge2, full.rougeL, full.rougeLsum, full.ratio)
    # the window moves with it: 0.9x..1.1x of the scaled total
    assert check(_at("gen_len", 39103 * 0.9, "llama3.1-8b"), subset) == []
    assert [m.metric for m in check(_at("gen_len", 39103 * 0.89, "llama3.1-8b"), subset)] == [
        "gen_len"]


def test_scaled_to_leaves_what_it_cannot_or_need_not_scale():
    full = TARGETS["llama3.1-8b"]
    assert full.scaled_to(13368) is full
    assert TARGETS["llama2-70b-99"].scaled_to(64) is TARGETS["llama2-70b-99"]  # no gen_len
    unknown = Baseline("b", rouge1=40.0, gen_len=1000)  # samples unknown
    assert unknown.scaled_to(5) is unknown
    with pytest.raises(ValueError, match="0 samples"):
        full.scaled_to(0)


def test_with_ratio():
    strict = TARGETS["llama2-70b-99.9"]
    assert strict.with_ratio(None) is strict and strict.ratio == 0.999
    assert strict.with_ratio(0.95).ratio == 0.95
    assert check(_scores(rouge1=42.3, rouge2=21.0, rougeL=27.3, gen_tok_len=2945),
                 strict.with_ratio(0.95)) == []
    with pytest.raises(ValueError, match="ratio"):
        strict.with_ratio(1.5)


def test_bad_samples():
    with pytest.raises(ValueError, match="samples"):
        Baseline("b", rouge1=1.0, samples=0)
