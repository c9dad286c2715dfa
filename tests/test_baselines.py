"""choose_baseline: which baseline a run is judged against, rule by rule."""

from __future__ import annotations

import json
import shutil

import pytest

from pytest_mlperf import embedded
from pytest_mlperf.accuracy import (
    BASELINE_KEYS,
    TARGETS,
    AccuracyScores,
    BaselineError,
    check,
    choose_baseline,
)

OTHER_SET = "0" * 64  # the sha256 of some data set that is not the embedded one


def _choose(**overrides):
    arguments = dict(benchmark="llama3.1-8b", declared=None, ratio=None,
                     dataset_sha256=OTHER_SET, model_is_embedded=False,
                     sample_indices=range(13368), dataset_total=13368)
    arguments.update(overrides)
    return choose_baseline(**arguments)


def _embedded(**overrides):
    arguments = dict(dataset_sha256=embedded.DATASET_SHA256, model_is_embedded=True,
                     sample_indices=range(256), dataset_total=256)
    arguments.update(overrides)
    return _choose(**arguments)


def _reduced(column: list[float]) -> float:
    """The reference's reduction, written out here: numpy's mean x 100, 4 decimals."""
    import numpy as np

    return float(round(np.mean(np.array(column, dtype=np.float64)) * 100, 4))


def test_official_targets_over_the_full_set():
    choice = _choose()
    assert choice.official and choice.note is None
    assert choice.baseline == TARGETS["llama3.1-8b"]


def test_official_targets_over_a_subset_are_judged_and_labelled():
    choice = _choose(sample_indices=range(64))
    assert not choice.official
    assert choice.note == "64 of 13,368 samples: not an MLPerf accuracy result"
    assert choice.baseline.rouge1 == 38.7792  # means as they are
    assert choice.baseline.gen_len == round(8167644 * 64 / 13368)  # a total, scaled
    assert choice.baseline == TARGETS["llama3.1-8b"].scaled_to(64)


def test_full_count_of_another_data_set_is_not_official():
    choice = _choose(dataset_total=20000)
    assert not choice.official and "13,368 of 13,368" in choice.note


def test_ratio_override_applies_to_official_targets():
    choice = _choose(benchmark="llama2-70b-99.9", ratio=0.98, sample_indices=range(24576),
                     dataset_total=24576)
    assert choice.baseline.ratio == 0.98
    scores = AccuracyScores(rouge1=43.6, rouge2=21.6, rougeL=28.1, rougeLsum=0.0,
                            gen_len=1, gen_num=1000, gen_tok_len=294_000)
    assert check(scores, choice.baseline) == []  # 43.6 < 0.999 x 44.4312, >= 0.98 x
    assert check(scores, TARGETS["llama2-70b-99.9"]) != []
    # another ratio than the checker's is not the checker's verdict
    assert not choice.official and "ROUGE ratio 0.98 (MLPerf: 0.999)" in choice.note
    same = _choose(benchmark="llama2-70b-99.9", ratio=0.999, sample_indices=range(24576),
                   dataset_total=24576)
    assert same.official and same.baseline.ratio == 0.999


def test_no_ratio_keeps_each_targets_own():
    choice = _choose(benchmark="llama2-70b-99.9", sample_indices=range(10), dataset_total=10)
    assert choice.baseline.ratio == 0.999


def test_unknown_benchmark():
    with pytest.raises(BaselineError, match=r"'my-model'.*llama3\.1-8b.*baseline=\{\.\.\.\}"):
        _choose(benchmark="my-model")


def test_declared_target_name_is_scaled_and_labelled_too():
    choice = _choose(benchmark="my-model", declared="llama3.1-8b-edge", sample_indices=range(50),
                     dataset_total=5000)
    assert choice.baseline == TARGETS["llama3.1-8b-edge"].scaled_to(50)
    assert choice.note == "50 of 5,000 samples: not an MLPerf accuracy result"
    with pytest.raises(BaselineError, match="llama3.1-8b-edge"):
        _choose(declared="llama3.1-8b-edgy")


def test_declared_figures_win_even_on_the_embedded_set():
    declared = {"rouge1": 50.0, "rougeL": 45.5, "gen_len": 1000, "samples": 100}
    choice = _embedded(declared=declared, sample_indices=range(10), ratio=0.9)
    assert not choice.official and choice.note is None
    baseline = choice.baseline
    assert (baseline.rouge1, baseline.rougeL, baseline.rouge2, baseline.ratio) == (
        50.0, 45.5, None, 0.9)
    assert baseline.gen_len == 100 and baseline.samples == 10  # scaled from its 100 samples
    assert baseline.name.startswith("llama3.1-8b (declared)")
    assert _choose(declared={"rouge1": 50.0}).baseline.ratio == 0.99


@pytest.mark.parametrize(("declared", "message"), [
    ({"rouge1": 50.0, "gen_num": 10}, "gen_num"),
    ({"rouge1": "high"}, "not a number"),
    ({"rouge1": float("nan")}, "not a number"),
    ({"gen_len": 10.5}, "whole number"),
    ({"samples": 100}, "no figure"),
    ({"rouge1": 50.0, "samples": 0}, "samples"),
])
def test_declared_figures_are_validated(declared, message):
    with pytest.raises(BaselineError, match=message):
        _choose(declared=declared)


def test_baseline_keys():
    assert BASELINE_KEYS == ("rouge1", "rouge2", "rougeL", "rougeLsum", "gen_len",
                             "tokens_per_sample", "samples")


def test_embedded_set_by_content_under_another_name(tmp_path):
    copy = tmp_path / "my_eval.json"
    shutil.copyfile(embedded.DATASET_PATH, copy)
    choice = _embedded(dataset_sha256=embedded.sha256_file(copy))
    assert not choice.official and choice.note is None
    summary = embedded.baseline()
    baseline = choice.baseline
    assert baseline.name == "embedded model on the embedded set"
    assert (baseline.rouge1, baseline.rouge2, baseline.rougeL, baseline.rougeLsum,
            baseline.gen_len, baseline.samples) == (
        summary["rouge1"], summary["rouge2"], summary["rougeL"], summary["rougeLsum"],
        summary["gen_len"], summary["gen_num"])
    # One byte more and it is another data set: the MLCommons targets apply.
    copy.write_bytes(copy.read_bytes() + b"\n")
    other = _embedded(dataset_sha256=embedded.sha256_file(copy))
    assert other.baseline == TARGETS["llama3.1-8b"].scaled_to(256)


def test_embedded_subset_of_64_is_exact():
    choice = _embedded(sample_indices=range(64))
    per_sample = json.loads(embedded.BASELINE_PATH.read_text())["per_sample"]
    baseline = choice.baseline
    assert baseline.name == "embedded model on the embedded set, 64 of 256 records (0-63)"
    assert baseline.samples == 64 and baseline.ratio == 0.99
    for key in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
        assert getattr(baseline, key) == _reduced(per_sample[key][:64]), key
    assert baseline.gen_len == sum(per_sample["gen_len"][:64])
    # The issue: the full set's mean asked 0.99 x 60.1786 = 59.58 of these 64 records.
    assert baseline.rouge1 < 0.99 * embedded.baseline()["rouge1"]


def test_embedded_ratio_override():
    assert _embedded(ratio=0.95).baseline.ratio == 0.95


def test_other_model_on_the_embedded_set():
    with pytest.raises(BaselineError, match=r"no baseline for this model on the embedded "
                                            r"sample set.*baseline=\{\.\.\.\}"):
        _embedded(model_is_embedded=False)


def test_embedded_model_on_another_set_gets_the_targets():
    choice = _choose(model_is_embedded=True, sample_indices=range(100), dataset_total=100)
    assert choice.baseline == TARGETS["llama3.1-8b"].scaled_to(100)


@pytest.mark.parametrize("indices", [[], [0, 256], [-1], [3, 3]])
def test_bad_sample_indices(indices):
    with pytest.raises(ValueError):
        _embedded(sample_indices=indices)
