"""pytest-xdist as a first-class mode: ``-n 2`` gives the same records and files as ``-n 0``,
each worker pinned to its own device id (``CUDA_VISIBLE_DEVICES``, set before any engine starts;
on a CPU machine numbered ids through the same code), each benchmark module on one worker, so
its tests share that worker's engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_mlperf import BenchmarkRecord
from pytest_mlperf.run import devices
from tests.fake_world import BENCHMARK, RECORDS_JSON, session_records, setup

pytest.importorskip("xdist")

RECORDING = r'''
import os


class Recording(CopyBackend):
    """Says in its record which devices and which process it started on."""
    name = "recording"

    def start(self):
        self.seen = {"cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"), "pid": os.getpid()}

    def describe(self):
        return {**super().describe(), **self.seen}


BACKENDS["recording"] = Recording


@pytest.fixture(scope="session")
def mlperf_model():
    return SystemSpec.local("/nonexistent/model")

'''


def _world(pytester: pytest.Pytester) -> list[str]:
    args = setup(pytester)
    pytester.makeconftest("from pathlib import Path\n" + (pytester.path / "conftest.py").read_text() + RECORDING)
    pytester.makepyfile(test_edge=BENCHMARK.replace("{SETTINGS}", "{}").replace("{SCENARIOS}", '("Offline",)')
                        .replace('"llama3.1-8b"', '"llama3.1-8b-edge"').replace("test_bench", "test_edge"))
    return [*args, RECORDS_JSON, "--mlperf-backend=recording", "--mlperf-scenario=Offline"]


def _run(pytester: pytest.Pytester, out: str, *args: str) -> tuple[list[BenchmarkRecord], set[str]]:
    results = pytester.path / out
    pytester.runpytest(*args, f"--mlperf-output={results}").assert_outcomes(passed=4)
    records = session_records(pytester)
    files = {str(p.relative_to(results)) for p in results.rglob("mlperf_log_*")}
    return records, files


def _comparable(record: BenchmarkRecord) -> dict:
    data = record.to_json()
    for key in ("figures", "timings"):
        data.pop(key)
    data["run"].pop("outdir")
    assert data.pop("worker") in ("", "gw0", "gw1")
    data["system"].pop("devices")
    for key in ("cuda_visible_devices", "pid"):
        data["system"]["extra"].pop(key)
    return data


def test_n2_gives_the_records_and_files_of_n0_with_a_device_per_worker(pytester: pytest.Pytester, monkeypatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    args = _world(pytester)
    serial, serial_files = _run(pytester, "serial", *args)
    parallel, parallel_files = _run(pytester, "parallel", *args, "-n", "2")
    assert len(serial) == len(parallel) == 4
    assert sorted(map(_comparable, serial), key=lambda d: d["nodeid"]) == \
        sorted(map(_comparable, parallel), key=lambda d: d["nodeid"])
    assert serial_files == parallel_files
    assert {f.rsplit("/", 1)[1] for f in serial_files} >= {"mlperf_log_summary.txt", "mlperf_log_detail.txt"}
    assert len({f.split("/")[0] for f in serial_files}) == 4

    assert {r.system.devices for r in serial} == {()}
    assert {r.system.extra["cuda_visible_devices"] for r in serial} == {None}
    by_module: dict[str, set] = {}
    for record in parallel:
        seen = record.system.extra["cuda_visible_devices"]
        assert record.system.devices == (seen,)  # what the engine saw is what the record says
        by_module.setdefault(record.nodeid.split("::")[0], set()).add((seen, record.system.extra["pid"]))
    # One module, one worker (one engine); two modules, two workers with their own device ids.
    assert all(len(v) == 1 for v in by_module.values()) and len(by_module) == 2
    assert {dev for (dev, _), in by_module.values()} == {"0", "1"}
    result = pytester.runpytest(*args, "-n", "2", "--mlperf-gpus-per-worker=2", "--mlperf-output=wide")
    result.stdout.fnmatch_lines(["mlperf: xdist workers pinned to device ids (no GPU) through CUDA_VISIBLE_DEVICES: "
                                 "gw0: 0,1; gw1: 2,3"])


def _eight_gpus(monkeypatch) -> None:
    import importlib

    from pytest_mlperf.core.record import Device

    # Through sys.modules: pytester drops modules a test imported, so an attribute of the
    # package may be an older copy than the one the plugin will import.
    system = importlib.import_module("pytest_mlperf.core.system")
    monkeypatch.setattr(system, "device", lambda: Device(cpu="x", cpu_cores=8, gpus=("NVIDIA H200",) * 8))


def test_gpus_are_shared_out_from_cuda_visible_devices(pytester: pytest.Pytester, monkeypatch) -> None:
    _eight_gpus(monkeypatch)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    args = _world(pytester)
    result = pytester.runpytest(*args, "-n", "2", "--mlperf-gpus-per-worker=2", "--mlperf-output=r")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["mlperf: xdist workers pinned to GPUs through CUDA_VISIBLE_DEVICES: gw0: 4,5; gw1: 6,7"])
    records = session_records(pytester)
    assert {r.system.devices for r in records} == {("4", "5"), ("6", "7")}
    result = pytester.runpytest(*args, "-n", "3", "--mlperf-gpus-per-worker=2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*-n 3 with --mlperf-gpus-per-worker=2 needs 6 GPUs; this machine offers 4 (4,5,6,7)*"])


def test_a_session_without_benchmarks_is_scheduled_as_xdist_would(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="import pytest\n@pytest.mark.parametrize('i', range(6))\ndef test_x(i): pass\n")
    result = pytester.runpytest("-n", "2", "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*scheduling tests via BenchmarkGroupScheduling*"])
    assert {line.split("]")[0] for line in result.stdout.lines if line.startswith("[gw")} == {"[gw0", "[gw1"}


@pytest.mark.parametrize(("nodeid", "group"), [
    ("benchmarks/test_llama3_1_8b.py::test_llama3_1_8b[Server-performance]", "mlperf:benchmarks/test_llama3_1_8b.py"),
    ("b/test_x.py::test_x[tp2-Offline-accuracy]", "mlperf:b/test_x.py"),
    ("b/test_x.py::test_x[Offline-performance-fp8]", "mlperf:b/test_x.py"),
    ("tests/test_plugin.py::test_x[Offline]", "tests/test_plugin.py::test_x[Offline]"),
    ("tests/test_plugin.py::test_y", "tests/test_plugin.py::test_y"),
])
def test_benchmark_tests_are_grouped_by_module(nodeid: str, group: str) -> None:
    assert devices.group_of(nodeid) == group


def test_shares_and_pins(monkeypatch) -> None:
    assert devices.share(["0", "1", "2", "3"], 1, 2) == ["2", "3"]
    assert devices.worker_index("gw11") == 11
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", " 2, 3 ")
    assert devices.device_pool(2, 2)[0] in (["2", "3"], ["0", "1", "2", "3"])  # GPUs here, or none
    _eight_gpus(monkeypatch)
    assert devices.device_pool(2, 1) == (["2", "3"], "cuda")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert devices.device_pool(2, 1) == ([str(i) for i in range(8)], "cuda")

    class Config:
        workerinput = {devices.WORKERINPUT_KEY: "3"}

    devices.pin(Config())  # type: ignore[arg-type]
    import os

    assert os.environ["CUDA_VISIBLE_DEVICES"] == "3"


def test_results_land_where_each_test_says(tmp_path: Path) -> None:
    """Two workers asking for the same test's next run folder at once never share one."""
    import threading

    from pytest_mlperf.run.benchmark import new_run_dir

    made: list[Path] = []
    threads = [threading.Thread(target=lambda: made.append(new_run_dir(tmp_path))) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(p.name for p in made) == sorted(f"run_{i}" for i in range(1, 17))
