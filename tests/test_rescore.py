"""Re-scoring the accuracy log a benchmark run wrote gives the run's own figures."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from pytest_mlperf import BenchmarkRecord

pytest.importorskip("transformers")

BENCHMARK = '''
import pytest

pytestmark = pytest.mark.mlperf(benchmark="llama3.1-8b", scenarios=("Offline",),
                                baseline={"rouge1": 20.0, "rouge2": 10.0, "rougeL": 20.0, "rougeLsum": 20.0})


def test_embedded(mlperf_result):
    pass
'''


def test_rescoring_a_runs_log_gives_the_runs_figures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_embedded=BENCHMARK)
    result = pytester.runpytest_subprocess(
        "--mlperf-mode=accuracy", "--mlperf-total-samples=16", "--junitxml=junit.xml", "-o", "junit_family=xunit1",
        "--mlperf-output", str(pytester.path / "results"), "-p", "no:cacheprovider",
    )
    result.assert_outcomes(passed=1)
    props = {p.get("name"): p.get("value") for p in ET.parse(pytester.path / "junit.xml").iter("property")}
    record = BenchmarkRecord.loads(props["mlperf.record"]).accuracy
    assert record is not None
    log = pytester.path / BenchmarkRecord.loads(props["mlperf.record"]).run.outdir / "mlperf_log_accuracy.json"
    out = pytester.path / "rescored.json"
    cli = subprocess.run(
        [sys.executable, "-m", "pytest_mlperf.accuracy", "--accuracy-log", str(log),
         "--dataset", "embedded", "--tokenizer", "embedded", "--json", str(out)],
        capture_output=True, text=True, check=False,
    )
    assert cli.returncode == 0, cli.stderr
    rescored = json.loads(out.read_text())
    scores = rescored.get("scores", rescored)
    for key in ("rouge1", "rouge2", "rougeL", "rougeLsum", "gen_len", "gen_num"):
        assert float(scores[key]) == float(getattr(record, key)), key
    assert record.gen_num == 16
