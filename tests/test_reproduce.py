"""The reproduce line reruns exactly what ran: the same tests (node ids, -k, -m), the same
workers, every mlperf option given, the timeouts and the comparison."""

from __future__ import annotations

import json
import shlex
from types import SimpleNamespace

import pytest

from pytest_mlperf.report.terminal import selection_flags
from tests.fake_world import setup


def _ran(result: pytest.RunResult) -> list[str]:
    return sorted(line.split(" ")[0] for line in result.outlines
                  if line.startswith("test_bench.py::") and (" PASSED" in line or " FAILED" in line))


@pytest.mark.heavy
def test_the_reproduce_line_reruns_the_same_tests_with_the_same_options(pytester: pytest.Pytester) -> None:
    args = setup(pytester, scenarios='("Offline", "Server")')
    pytester.makeini("[pytest]\nmarkers =\n    edge: the edge benchmark\n")
    pytester.runpytest("--mlperf-backend=copy", "--mlperf-scenario=Offline", "--mlperf-mode=performance",
                       "--mlperf-save", "--mlperf-storage=stored", *args).assert_outcomes(passed=1)
    first = pytester.runpytest(
        "test_bench.py", "-v", "-k", "Offline and not accuracy", "-m", "not edge", "--mlperf-backend=copy",
        "--mlperf-scenario=Offline,Server", "--mlperf-run-timeout=120", "--mlperf-engine-timeout=60",
        "--mlperf-storage=stored", "--mlperf-compare-fail=tokens_per_second:90%",
        "--mlperf-setting=offline_expected_qps=100", "--mlperf-json=out.json", *args)
    first.assert_outcomes(passed=1, deselected=3)
    reproduce = json.loads((pytester.path / "out.json").read_text())["reproduce"]
    for flag in ("-k 'Offline and not accuracy'", "-m 'not edge'", "--mlperf-run-timeout=120",
                 "--mlperf-engine-timeout=60", "--mlperf-compare-fail=tokens_per_second:90%",
                 "--mlperf-setting=offline_expected_qps=100", "test_bench.py"):
        assert flag in reproduce, reproduce
    command = shlex.split(reproduce)
    assert command[0] == "pytest"
    # the line itself, run again (plus -v to list the tests, -p to keep pytester's cache off)
    again = pytester.runpytest(*command[1:], "-v", "-p", "no:cacheprovider")
    again.assert_outcomes(passed=1, deselected=3)
    assert _ran(again) == _ran(first) == ["test_bench.py::test_bench[Offline-performance]"]
    again.stdout.fnmatch_lines(["*MLPerf comparison*"])  # compared with the stored run, as the first


def test_selection_flags_name_workers_and_distribution() -> None:
    option = SimpleNamespace(keyword="edge", markexpr="", numprocesses=4, dist="loadgroup", timeout=900)
    assert selection_flags(SimpleNamespace(option=option)) == ["-k edge", "-n 4", "--dist=loadgroup",
                                                               "--timeout=900"]
    plain = SimpleNamespace(option=SimpleNamespace(keyword="", markexpr="", numprocesses=None))
    assert selection_flags(plain) == []
