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
from pytest_mlperf.live import status as st
from pytest_mlperf.report.results_json import read_results_json
from tests.servers import SERVED_NAME, FakeServer, vllm_servers
from tests.test_openai_backend import BENCHMARK as SERVED_BENCHMARK

pytest.importorskip("xdist")

#: test_openai_backend's served benchmark, for any benchmark name
BENCHMARK = SERVED_BENCHMARK.replace('benchmark="llama3.1-8b"', 'benchmark="{NAME}"')


NO_TOKENIZER = """
import pytest

@pytest.fixture(scope="session")
def mlperf_tokenizer():
    return None
"""


def _served_world(pytester: pytest.Pytester, *urls: str) -> list[str]:
    """Two benchmark modules (a datacenter and an edge benchmark) over served endpoints."""
    pytester.makepyfile(test_datacenter=BENCHMARK.replace("{NAME}", "llama3.1-8b"),
                        test_edge=BENCHMARK.replace("{NAME}", "llama3.1-8b-edge"))
    # Performance runs of token-id endpoints decode nothing: no tokenizer, so no worker spends
    # its first seconds importing torch and transformers.
    pytester.makeconftest(NO_TOKENIZER)
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


# --- workers on other hosts: two popen workers in working directories of their own -----------

def _hosts(pytester: pytest.Pytester, *names: str) -> list[Path]:
    """Working directories of their own, each with a copy of the project (as each host would
    have its checkout): conftest, benchmarks, data set."""
    import shutil

    hosts = []
    for name in names:
        host = pytester.path.parent / f"{pytester.path.name}-host{name}"
        shutil.copytree(pytester.path, host, ignore=shutil.ignore_patterns("results", "__pycache__"))
        hosts.append(host)
    return hosts


def _copy_world(pytester: pytest.Pytester) -> list[str]:
    """The fake world's benchmark and an edge one, paths relative (resolved on each host)."""
    from tests.fake_world import BENCHMARK as COPY_BENCHMARK
    from tests.fake_world import setup

    setup(pytester, scenarios='("Offline",)')
    pytester.makepyfile(test_edge=COPY_BENCHMARK.replace("{SETTINGS}", "{}").replace("{SCENARIOS}", '("Offline",)')
                        .replace('"llama3.1-8b"', '"llama3.1-8b-edge"').replace("test_bench", "test_edge"))
    return ["--mlperf-dataset=data.json", "--mlperf-backend=copy", "--mlperf-scenario=Offline",
            "--mlperf-json=records.json", "-p", "no:cacheprovider", "-d"]


@pytest.mark.heavy
def test_remote_workers_send_records_logs_and_status_files_back(pytester: pytest.Pytester) -> None:
    """``-d --tx popen//chdir=A --tx popen//chdir=B`` with a relative ``--mlperf-output``: each
    worker writes its runs under its own folder, as a worker on another host would; the
    controller ends up with every run folder and status file under its own output (a new
    ``run_<n>`` beside an earlier session's), records pointing there and naming where the files
    came from, one JSON, summary and submission tree made from the copies."""
    import json
    import socket

    from tests.test_submission import SYSTEM

    args = _copy_world(pytester)
    (pytester.path / "testbox.json").write_text(json.dumps({**SYSTEM, "system_type": "datacenter,edge"}))
    hosts = _hosts(pytester, "A", "B")
    output = pytester.path / "results"
    earlier = output / "test_bench.py_test_bench_Offline-performance" / "run_1"
    earlier.mkdir(parents=True)
    (earlier / "from_an_earlier_session").write_text("kept")
    result = pytester.runpytest(
        *args, "--mlperf-output=results", "--mlperf-submission-dir=sub", "--mlperf-submitter=Testorg",
        "--mlperf-system-desc=testbox.json", *(f"--tx=popen//chdir={h}" for h in hosts))
    result.assert_outcomes(passed=4)
    records = _records(pytester)
    assert len(records) == 4 and {r.worker for r in records} == {"gw0", "gw1"}
    host = socket.gethostname()
    for record in records:
        outdir = Path(record.run.outdir)
        assert outdir.is_relative_to(output) and (outdir / "mlperf_log_summary.txt").is_file(), record.run.outdir
        where, _, remote = record.worker_outdir.partition(":")
        remote_dir = Path(remote) / outdir.name
        assert where == host and remote_dir.is_relative_to(hosts[int(record.worker[2:])] / "results")
        # a copy: the same files, byte for byte, both sides
        assert sorted(p.name for p in remote_dir.iterdir()) == sorted(p.name for p in outdir.iterdir())
        assert (remote_dir / "mlperf_log_detail.txt").read_bytes() == (outdir / "mlperf_log_detail.txt").read_bytes()
        status = json.loads(st.status_path(output, record.nodeid).read_text())
        assert status["outdir"] == record.run.outdir and status["state"] == "passed"
    # An earlier session's run_1 is never overwritten: this session's copy went to run_2.
    assert (earlier / "from_an_earlier_session").read_text() == "kept"
    perf = next(r for r in records if r.nodeid.endswith("test_bench[Offline-performance]"))
    assert Path(perf.run.outdir).parent.name == "run_2"
    assert (output / "summary.md").is_file() and not list(output.glob(".mlperf-controller*"))
    tree = pytester.path / "sub" / "closed" / "Testorg" / "results" / "testbox"
    assert len(list(tree.rglob("mlperf_log_summary.txt"))) == 4


@pytest.mark.heavy
def test_workers_sharing_the_controllers_folder_write_there_directly(pytester: pytest.Pytester) -> None:
    """The same with an absolute ``--mlperf-output`` on one file system: nothing is copied."""
    args = _copy_world(pytester)
    (host,) = _hosts(pytester, "A")
    result = pytester.runpytest(*args, f"--mlperf-output={pytester.path / 'results'}", f"--tx=popen//chdir={host}")
    result.assert_outcomes(passed=4)
    records = _records(pytester)
    assert len(records) == 4
    assert all(r.worker_outdir == "" and Path(r.run.outdir).parent.name == "run_1" for r in records)
    assert not list(host.rglob("mlperf_log_summary.txt"))
