"""llama3.1-8b-edge: Offline and SingleStream with the edge settings of mlperf.conf
(5000-sample performance set; the real data set is sample_cnn_eval_5000.json)."""

import pytest

pytestmark = pytest.mark.mlperf(
    benchmark="llama3.1-8b-edge",
    scenarios=("Offline", "SingleStream"),
    rouge_ratio=0.99,
)


def test_llama3_1_8b_edge(mlperf_result):
    """Fails when loadgen calls the run INVALID or a ROUGE score drops below 99% of baseline."""
