"""One pytest session over several nodes: each xdist worker its own endpoints
(``--mlperf-endpoints-per-worker``), against fake servers here and two real ``vllm serve`` (marker
``servers``); workers in other working directories (``--tx popen//chdir=``, as other hosts')
whose logs and status files come back to the controller."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_mlperf import BenchmarkRecord
from pytest_mlperf.report.results_json import read_results_json
from tests.servers import SERVED_NAME, FakeServer, vllm_servers

pytest.importorskip("xdist")

BENCHMARK = """
import pytest

pytestmark = pytest.mark.mlperf(
    benchmark="{NAME}", scenarios=("Offline", "Server"),
    baseline={"rouge1": 1e-9, "rouge2": 1e-9, "rougeL": 1e-9, "rougeLsum": 1e-9},
)

def test_served(mlperf_result):
    pass
"""


def _served_world(pytester: pytest.Pytester, *urls: str) -> list[str]:
    """Two benchmark modules (a datacenter and an edge benchmark) over served endpoints."""
    pytester.makepyfile(test_datacenter=BENCHMARK.replace("{NAME}", "llama3.1-8b"),
                        test_edge=BENCHMARK.replace("{NAME}", "llama3.1-8b-edge"))
    return [*(f"--mlperf-endpoint={u}" for u in urls), f"--mlperf-served-model={SERVED_NAME}",
            "--mlperf-total-samples=24", "--mlperf-scenario=Offline", "--mlperf-mode=performance",
            f"--mlperf-output={pytester.path / 'results'}", "--mlperf-json=records.json",
            "-p", "no:cacheprovider"]


def _records(pytester: pytest.Pytester) -> list[BenchmarkRecord]:
    return read_results_json(pytester.path / "records.json")


def _assert_each_worker_used_only_its_endpoints(records: list[BenchmarkRecord], urls: list[str]) -> None:
    assert records
    for record in records:
        index = int(record.worker.removeprefix("gw"))
        assert record.system.endpoints == (urls[index],), (record.worker, record.system.endpoints)
        counts = record.system.extra["endpoint_counts"]
        assert list(counts) == [urls[index]] and counts[urls[index]]["completed"] >= 1


def test_each_worker_gets_its_own_endpoints(pytester: pytest.Pytester) -> None:
    with FakeServer() as a, FakeServer() as b:
        urls = [a.url, b.url]
        args = _served_world(pytester, *urls)
        result = pytester.runpytest(*args, "-n", "2", "--mlperf-endpoints-per-worker=1")
        result.assert_outcomes(passed=2)
        result.stdout.fnmatch_lines([f"mlperf: xdist workers' endpoints (--mlperf-endpoints-per-worker): "
                                     f"gw0: {a.url}; gw1: {b.url}"])
        records = _records(pytester)
        assert len(records) == 2 and {r.worker for r in records} == {"gw0", "gw1"}
        _assert_each_worker_used_only_its_endpoints(records, urls)
        # Each server heard only its worker's test: its 24 queries and the start's probe.
        assert a.requests == b.requests == 24 + 1


@pytest.mark.parametrize(("args", "message"), [
    (["-n", "2", "--mlperf-endpoints-per-worker=2"],
     "*-n 2 with --mlperf-endpoints-per-worker=2 needs 4 endpoints; --mlperf-endpoint names 2 "
     "(http://a:1, http://b:1): give more endpoints, or fewer workers or endpoints each*"),
    (["--mlperf-endpoints-per-worker=0"], "*--mlperf-endpoints-per-worker (ini mlperf_endpoints_per_worker): "
     "invalid value '0'; expected a positive integer*"),
])
def test_endpoint_share_mistakes_are_usage_errors(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    pytester.makepyfile(test_served=BENCHMARK.replace("{NAME}", "llama3.1-8b"))
    result = pytester.runpytest("--mlperf-endpoint=http://a:1", "--mlperf-endpoint=http://b:1",
                                f"--mlperf-served-model={SERVED_NAME}", *args, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_endpoint_share_without_endpoints_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmlperf_endpoints_per_worker = 1\n")
    pytester.makepyfile(test_served=BENCHMARK.replace("{NAME}", "llama3.1-8b"))
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--mlperf-endpoints-per-worker (ini mlperf_endpoints_per_worker): invalid value "
                                 "'1'; it shares out --mlperf-endpoint among xdist workers, and no endpoint is given*"])


# --- against two real vllm serve processes -----------------------------------------------------

needs_vllm = pytest.mark.skipif(importlib.util.find_spec("vllm") is None,
                                reason="vllm is not installed (CPU: scripts/setup.sh --vllm)")


@pytest.fixture(scope="module")
def vllm_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Any]]:
    with vllm_servers(2, tmp_path_factory.mktemp("vllm_serve")) as servers:
        yield servers


@needs_vllm
@pytest.mark.servers
def test_two_workers_two_real_servers_one_each(pytester: pytest.Pytester, vllm_pair: list[Any]) -> None:
    """CI's check of the issue: ``-n 2 --mlperf-endpoints-per-worker=1`` over two real
    ``vllm serve``; each worker's records name only its endpoint, one JSON for the session."""
    urls = [s.url for s in vllm_pair]
    args = _served_world(pytester, *urls)
    result = pytester.runpytest_subprocess(*args, "-n", "2", "--mlperf-endpoints-per-worker=1")
    result.assert_outcomes(passed=2)
    records = _records(pytester)
    assert len(records) == 2 and {r.worker for r in records} == {"gw0", "gw1"}
    _assert_each_worker_used_only_its_endpoints(records, urls)
    assert all(r.system.engine and r.system.engine.startswith("vllm") for r in records)
    assert Path(pytester.path / "results" / "summary.md").is_file()
