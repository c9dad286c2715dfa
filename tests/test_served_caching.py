"""A served engine's cross-query cache: read from the server's Prometheus ``/metrics`` (vLLM's
``vllm:prefix_cache_hits`` counter) before and after each run; hits in between make the run not
an MLPerf one and, under the official profile, fail it naming the endpoint. A server double for
the plugin's logic, one real ``vllm serve`` with caching on for the counter's name and meaning."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from pytest_mlperf.backends.openai import PREFIX_CACHE_HITS, metric_total
from pytest_mlperf.core.record import Conformance
from pytest_mlperf.core.vocabulary import Profile
from pytest_mlperf.options import MlperfOptions
from pytest_mlperf.run.conformance import after_run
from tests.fake_world import RECORDS_JSON, session_records
from tests.servers import SERVED_NAME, Behaviour, FakeServer, VllmServer

VLLM_METRICS = """\
# HELP vllm:prefix_cache_hits_total Prefix cache hits, in terms of number of cached tokens.
# TYPE vllm:prefix_cache_hits_total counter
vllm:prefix_cache_hits_total{engine="0",model_name="m"} 1184.0
vllm:prefix_cache_hits_total{engine="1",model_name="m"} 16.0 1733300000000
vllm:prefix_cache_hits_created{engine="0",model_name="m"} 1.7e9
vllm:prefix_cache_queries_total{engine="0",model_name="m"} 5000.0
"""


def test_the_counter_is_summed_over_engines() -> None:
    assert metric_total(VLLM_METRICS, PREFIX_CACHE_HITS) == 1200.0
    assert metric_total("vllm:num_requests_running 3\n", PREFIX_CACHE_HITS) is None


CLEAN = Conformance(mlperf=True, checked=True)
URL = "http://node1:8000"


@pytest.mark.parametrize(("profile", "allow", "fails"), [
    (Profile.QUICK, False, False), (Profile.OFFICIAL, False, True), (Profile.OFFICIAL, True, False)])
def test_hits_during_a_run_label_it_and_official_fails_it(profile: Profile, allow: bool, fails: bool) -> None:
    options = MlperfOptions(profile=profile, allow_nonconformant=allow)
    value, failures = after_run(CLEAN, {URL: 100.0, "http://node2:8000": 5.0},
                                {URL: 340.0, "http://node2:8000": 5.0}, options)
    assert not value.mlperf
    assert value.reasons == (f"prefix caching at {URL}: 240 prompt tokens served from its cache during the "
                             "run (MLPerf forbids caching across queries: start the server with "
                             "--no-enable-prefix-caching)",)
    assert bool(failures) is fails
    if fails:
        assert URL in failures[0] and "--mlperf-allow-nonconformant" in failures[0]


def test_no_hits_or_no_counter_leave_the_run_as_it_was() -> None:
    options = MlperfOptions(profile=Profile.OFFICIAL)
    assert after_run(CLEAN, {URL: 7.0}, {URL: 7.0}, options) == (CLEAN, [])
    assert after_run(CLEAN, {URL: None}, {URL: None}, options) == (CLEAN, [])


BENCHMARK = """
import pytest

pytestmark = pytest.mark.mlperf(
    benchmark="llama3.1-8b", scenarios=("Offline",),
    baseline={"rouge1": 1e-9, "rouge2": 1e-9, "rougeL": 1e-9, "rougeLsum": 1e-9},
)

def test_served(mlperf_result):
    pass
"""


def _plugin_args(pytester: pytest.Pytester, url: str, samples: int) -> list[str]:
    """Run in a subprocess: the runs import torch (the tokenizer), which one process cannot
    import again after pytester dropped it."""
    pytester.makepyfile(test_served=BENCHMARK)
    return [f"--mlperf-endpoint={url}", f"--mlperf-served-model={SERVED_NAME}",
            f"--mlperf-total-samples={samples}", f"--mlperf-output={pytester.path / 'results'}",
            "-p", "no:cacheprovider", RECORDS_JSON]


@pytest.mark.heavy
def test_through_the_plugin_hits_at_the_server_mark_the_run(pytester: pytest.Pytester) -> None:
    with FakeServer(Behaviour(cache_hits_per_request=32)) as server:
        result = pytester.runpytest_subprocess("--mlperf-mode=performance", *_plugin_args(pytester, server.url, 8))
    result.assert_outcomes(passed=1)
    record, = session_records(pytester)
    assert not record.conformance.mlperf
    # 8 queries in the run, 32 cached tokens each; the start's test completion is not counted
    assert [r for r in record.conformance.reasons if r.startswith("prefix caching at")] == [
        f"prefix caching at {server.url}: 256 prompt tokens served from its cache during the run "
        "(MLPerf forbids caching across queries: start the server with --no-enable-prefix-caching)"]
    result.stdout.fnmatch_lines([f"    not MLPerf: prefix caching at {server.url}: 256 prompt tokens*"])
    summary = (pytester.path / "results" / "summary.md").read_text()
    assert f"prefix caching at {server.url}: 256 prompt tokens" in summary


@pytest.mark.servers
@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm is not installed")
def test_a_real_vllm_serve_with_caching_on_is_marked_from_its_metrics(
        pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory) -> None:
    """vLLM's own default, prefix caching on, statistics kept: the performance test sends the
    prompts once, the accuracy test the same prompts again, which the cache serves."""
    from pytest_mlperf.embedded import MODEL_DIR

    server = VllmServer(Path(MODEL_DIR), tmp_path_factory.mktemp("vllm_cache") / "serve.log", log_stats=True,
                        prefix_caching=True)
    server.start()
    try:
        server.wait_ready(300)
        result = pytester.runpytest_subprocess("--mlperf-mode=both", *_plugin_args(pytester, server.url, 8))
    finally:
        server.stop()
    result.assert_outcomes(passed=2)
    records: dict[str, Any] = {r.mode: r for r in session_records(pytester)}
    reasons = records["accuracy"].conformance.reasons
    assert any(r.startswith(f"prefix caching at {server.url}: ") for r in reasons), reasons
    assert not records["accuracy"].conformance.mlperf
