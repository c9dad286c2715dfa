"""Aggregation and printing: the reference's NumPy reduction and its printed dict."""

from __future__ import annotations

import ast
import json
import random
import re
from pathlib import Path

import pytest

from pytest_mlperf.accuracy import AccuracyScores
from pytest_mlperf.accuracy.scores import aggregate
from tests.shared import public_logs_dir

np = pytest.importorskip("numpy")

REAL_LOGS = public_logs_dir()


def _reference(values: list[float]) -> float:
    # evaluation.py: f"{round(np.mean(v) * 100, 4)}" over a list of Python floats
    return float(f"{round(np.mean(values) * 100, 4)}")


def test_aggregate_is_the_reference_reduction():
    rng = random.Random(3)
    for _ in range(2000):
        n = rng.randrange(1, 400)
        rows = [tuple(rng.random() for _ in range(4)) for _ in range(n)]
        scores = aggregate(rows, gen_len=0)
        for column, key in enumerate(("rouge1", "rouge2", "rougeL", "rougeLsum")):
            assert getattr(scores, key) == _reference([row[column] for row in rows])


def test_numpy_rounding_not_pythons():
    # The reference rounds an np.float64 (np.round: scale, round half even, unscale), which
    # can differ from Python's correctly rounded round(); find such a case and follow NumPy.
    rng = random.Random(4)
    for _ in range(10000):
        x = (rng.randrange(10**6) + 0.5) / 1e6  # x * 100 sits on a 4th-decimal half
        if float(round(np.float64(x) * 100, 4)) != round(x * 100, 4):
            break
    else:
        pytest.fail("no value found where the two roundings differ")
    assert aggregate([(x, x, x, x)], gen_len=0).rouge1 == float(round(np.float64(x) * 100, 4))
    assert aggregate([(x, x, x, x)], gen_len=0).rouge1 != round(x * 100, 4)


def test_order_is_kept_for_the_sum():
    # Pairwise summation depends on the order: a permutation may change the last bit, so the
    # aggregation must see rows in log order (it does: it takes them as given).
    rows = [(v, v, v, v) for v in (0.1, 0.7, 1e-9, 0.3333333333333333, 0.2) * 40]
    assert aggregate(rows, gen_len=0).rouge1 == _reference([r[0] for r in rows])


def test_empty_is_an_error():
    with pytest.raises(ValueError, match="no predictions"):
        aggregate([], gen_len=0)


def test_as_dict_is_json_and_has_the_reference_keys():
    scores = AccuracyScores(38.7898, 15.9437, 24.5735, 35.8053, 8163079, 13368)
    assert list(scores.as_dict()) == ["rouge1", "rouge2", "rougeL", "rougeLsum", "gen_len",
                                      "gen_num"]
    with_tokens = AccuracyScores(44.5633, 22.1252, 28.7479, 42.1237, 28336574, 24576, 7194315)
    assert with_tokens.as_dict()["tokens_per_sample"] == 292.7
    json.dumps(with_tokens.as_dict())


def test_reference_line():
    scores = AccuracyScores(38.7898, 15.9437, 24.5735, 35.8053, 8163079, 13368)
    line = scores.reference_line()
    assert line == ("{'rouge1': '38.7898', 'rouge2': '15.9437', 'rougeL': '24.5735', "
                    "'rougeLsum': '35.8053', 'gen_len': 8163079, 'gen_num': 13368}")
    parsed = ast.literal_eval(line)
    assert float(parsed["rouge1"]) == scores.rouge1


def _real_result_lines() -> list[tuple[Path, dict]]:
    found = []
    for path in sorted(REAL_LOGS.rglob("accuracy.txt")):
        for line in path.read_text(errors="replace").splitlines():
            if re.match(r"^\{'rouge1'", line.strip()):
                found.append((path, ast.literal_eval(line.strip())))
    return found


def test_reference_line_llama2():
    scores = AccuracyScores(44.5633, 22.1252, 28.7479, 42.1237, 28336574, 24576, 7194315)
    assert ast.literal_eval(scores.reference_line("llama2-70b-99")) == {
        "rouge1": 44.5633, "rouge2": 22.1252, "rougeL": 28.7479, "rougeLsum": 42.1237,
        "gen_len": 28336574, "gen_num": 24576, "gen_tok_len": 7194315,
        "tokens_per_sample": 292.7}


@pytest.mark.skipif(not REAL_LOGS.is_dir(), reason=f"public MLPerf logs not found at {REAL_LOGS} "
                    "(set MLPERF_PUBLIC_LOGS, or PYTEST_MLPERF_SHARED to the shared folder)")
def test_reference_line_reads_like_real_accuracy_txt():
    real = _real_result_lines()
    assert len(real) >= 3
    for path, figures in real:
        benchmark = "llama2-70b-99" if "llama2-70b" in str(path) else "llama3.1-8b"
        scores = AccuracyScores(
            *(float(figures[k]) for k in ("rouge1", "rouge2", "rougeL", "rougeLsum")),
            gen_len=int(figures["gen_len"]), gen_num=int(figures["gen_num"]),
            gen_tok_len=figures.get("gen_tok_len"))
        line = scores.reference_line(benchmark)
        assert ast.literal_eval(line) == figures, path
        assert list(ast.literal_eval(line)) == list(figures), path
