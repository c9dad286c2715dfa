"""llama3.1-8b (datacenter): Offline, Server and Interactive over CNN/DailyMail.

With no options this runs on the embedded tiny Llama and its sample set; point
``--mlperf-model`` at Llama-3.1-8B-Instruct and ``--mlperf-dataset`` at cnn_eval.json for the
real benchmark (accuracy is then judged against the MLCommons targets).
"""

import pytest

pytestmark = pytest.mark.mlperf(
    benchmark="llama3.1-8b",
    scenarios=("Offline", "Server", "Interactive"),
    rouge_ratio=0.99,
)


def test_llama3_1_8b(mlperf_result):
    """Fails when loadgen calls the run INVALID or a ROUGE score drops below 99% of baseline."""
