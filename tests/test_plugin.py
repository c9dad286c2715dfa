"""The plugin end to end with pytester: real loadgen, test-double engines and tokenizer."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from tests.fake_world import setup
from tests.probes import loaded_modules


def test_passing_benchmark_reports_validity_tokens_and_accuracy(pytester: pytest.Pytester) -> None:
    args = setup(pytester)
    result = pytester.runpytest("--mlperf-backend=copy", "--junitxml=junit.xml", "-o", "junit_family=xunit1", *args)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([
        "*mlperf: scenario=Offline mode=both profile=quick backend=copy*",
        "*MLPerf results*",
        "llama3.1-8b *Offline *acc *PASS * 100.0 100.0 100.0 100.0",
        "llama3.1-8b *Offline *perf *PASS VALID *[0-9]*",
    ])
    props = {p.get("name"): p.get("value") for p in ET.parse(pytester.path / "junit.xml").iter("property")}
    assert props["mlperf.validity"] == "VALID"
    assert float(props["mlperf.tokens_per_second"]) > 0
    assert float(props["mlperf.rouge1"]) == 100.0
    record = json.loads(props["mlperf.record"])
    assert record["profile"] == "quick" and record["system"]["backend"] == "copy"


def test_invalid_run_fails_with_loadgens_reason(pytester: pytest.Pytester) -> None:
    # 0.6 s per query, one at a time, at 20 queries/s: the queue grows and TTFT passes 2 s.
    args = setup(pytester, settings='{"server_target_qps": 20, "min_query_count": 24, "min_duration_ms": 1000}')
    result = pytester.runpytest("--mlperf-backend=slow", "--mlperf-scenario=Server", "--mlperf-mode=performance", *args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*loadgen says INVALID: *TTFT*", "FAIL llama3.1-8b Server performance *INVALID*"])


def test_accuracy_miss_names_metric_value_and_bound(pytester: pytest.Pytester) -> None:
    args = setup(pytester)
    result = pytester.runpytest("--mlperf-backend=garble", "--mlperf-mode=accuracy", *args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*accuracy below baseline*: rouge1 6.25 < 99 (0.99 x 100); rouge2 0 < 99 (0.99 x 100)*"])


def test_engine_crash_fails_the_test_and_keeps_the_logs(pytester: pytest.Pytester) -> None:
    args = setup(pytester)
    result = pytester.runpytest("--mlperf-backend=crash", "--mlperf-mode=performance", *args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*engine failed: RuntimeError: CUDA error*"])
    logs = list((pytester.path / "results").rglob("mlperf_log_detail.txt"))
    assert len(logs) == 1


@pytest.mark.parametrize("scenario", ["Server", "Interactive"])
def test_engine_crash_in_a_streaming_accuracy_run_keeps_the_logs(pytester: pytest.Pytester, scenario: str) -> None:
    """Queries that fail before their first token still get one (an empty one): without it,
    loadgen's accuracy logger dereferences a null pointer and the whole process dies. A
    subprocess, so that a regression fails this test instead of killing the session."""
    args = setup(pytester, scenarios='("Offline", "Server", "Interactive")')
    result = pytester.runpytest_subprocess(
        "--mlperf-backend=crash", f"--mlperf-scenario={scenario}", "--mlperf-mode=accuracy", *args
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stderr.str()[-2000:]
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*engine failed: RuntimeError: CUDA error*"])
    logs = list((pytester.path / "results").rglob("mlperf_log_accuracy.json"))
    assert len(logs) == 1
    entries = json.loads(logs[0].read_text())
    assert entries and all(e["data"] == "" and e["token_data"] == "" for e in entries)


def test_hung_engine_fails_at_the_run_timeout_and_keeps_the_logs(pytester: pytest.Pytester) -> None:
    args = setup(pytester)
    result = pytester.runpytest("--mlperf-backend=hang", "--mlperf-mode=performance", "--mlperf-run-timeout=2", *args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*engine failed: TimeoutError: the run did not finish within 2 s*"])
    assert list((pytester.path / "results").rglob("mlperf_log_summary.txt"))


def test_every_run_gets_its_own_folder(pytester: pytest.Pytester) -> None:
    args = setup(pytester)
    for _ in range(2):
        pytester.runpytest("--mlperf-backend=copy", "--mlperf-mode=performance", *args).assert_outcomes(passed=1)
    runs = sorted(p.parent.parent.name for p in (pytester.path / "results").rglob("mlperf_log_summary.txt"))
    assert runs == ["run_1", "run_2"]


def test_unsupported_scenario_is_skipped_with_reason(pytester: pytest.Pytester) -> None:
    # A scenario no selected benchmark declares is a usage error (tests/test_reliability.py).
    args = setup(pytester)
    pytester.makepyfile(test_edge="import pytest\n"
                        "pytestmark = pytest.mark.mlperf(benchmark='llama3.1-8b-edge', scenarios=['SingleStream'],\n"
                        "    baseline={'rouge1': 100.0})\n"
                        "def test_edge(mlperf_result): pass\n")
    result = pytester.runpytest("--mlperf-backend=copy", "--mlperf-scenario=Offline,SingleStream",
                                "--mlperf-mode=accuracy", "-rs", *args)
    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.fnmatch_lines(["*llama3.1-8b does not run SingleStream (declares Offline, Server)*"])


def test_non_streaming_backend_refused_for_server(pytester: pytest.Pytester) -> None:
    args = setup(pytester)
    result = pytester.runpytest("--mlperf-backend=offline-only", "--mlperf-scenario=Server", "--mlperf-mode=performance", *args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*cannot report first tokens, which Server needs*"])


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--mlperf-scenario=Ofline", "*--mlperf-scenario (ini mlperf_scenario): invalid value 'Ofline'; expected one of: Offline, Server, SingleStream, Interactive*"),
        ("--mlperf-mode=fast", "*--mlperf-mode*'fast'*performance, accuracy, both*"),
        ("--mlperf-profile=long", "*--mlperf-profile*'long'*quick, official*"),
        ("--mlperf-total-samples=0", "*--mlperf-total-samples*'0'*positive integer*"),
        ("--mlperf-dataset=nowhere.json", "*--mlperf-dataset*no such data set file*nowhere.json*"),
        ("--mlperf-setting=server_target_qs=3", "*--mlperf-setting*'server_target_qs' is not a loadgen TestSettings field; did you mean server_target_qps*"),
        ("--mlperf-setting=min_query_count=1.5", "*--mlperf-setting: min_query_count = 1.5 is not a int*"),
        ("--mlperf-setting=server_target_qps", "*--mlperf-setting*expected KEY=VALUE*"),
    ],
)
def test_bad_options_are_rejected_by_name(pytester: pytest.Pytester, flag: str, message: str) -> None:
    result = pytester.runpytest(flag)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_unknown_backend_lists_the_known_ones(pytester: pytest.Pytester) -> None:
    args = setup(pytester)
    result = pytester.runpytest("--mlperf-backend=tensorrt", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # once, before any engine starts
    result.stdout.fnmatch_lines(["*--mlperf-backend*unknown backend 'tensorrt'; known: *hf*vllm*"])


def test_malformed_record_is_named(pytester: pytest.Pytester) -> None:
    args = setup(pytester)
    records = json.loads((pytester.path / "data.json").read_text())
    del records[5]["output"]
    (pytester.path / "data.json").write_text(json.dumps(records))
    result = pytester.runpytest("--mlperf-backend=copy", *args)
    result.stdout.fnmatch_lines(["*data.json: record 5 lacks the field 'output'*"])
    assert result.ret != 0


def test_options_fall_back_to_ini(pytester: pytest.Pytester) -> None:
    args = setup(pytester)
    pytester.makeini("[pytest]\nmlperf_scenario = Server\nmlperf_mode = performance\nmlperf_backend = copy\n")
    result = pytester.runpytest("--collect-only", "-q", *args)
    result.stdout.fnmatch_lines(["*test_bench[[]Server-performance[]]*"])


def test_bad_marker_is_a_usage_error(pytester: pytest.Pytester) -> None:
    args = setup(pytester)
    pytester.makepyfile(test_bench="import pytest\n@pytest.mark.mlperf(benchmark='llama3.1-8b', scenarios=['Offlin'])\ndef test_x(mlperf_result): pass\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error
    result.stdout.fnmatch_lines(["*test_x: mlperf marker scenario 'Offlin' is not one of Offline, Server, SingleStream, Interactive*"])


def test_runs_under_xdist(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    args = setup(pytester)
    result = pytester.runpytest("-n", "2", "--mlperf-backend=copy", *args)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*MLPerf results*", "llama3.1-8b *Offline *perf *PASS VALID*"])


def test_html_report_has_the_figures(pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_html")
    args = setup(pytester)
    result = pytester.runpytest("--mlperf-backend=copy", "--html=report.html", *args)
    result.assert_outcomes(passed=2)
    page = (pytester.path / "report.html").read_text()
    assert "Tokens/s" in page and "VALID" in page and "100.0000" in page


HEAVY = ("numpy", "mlperf_loadgen", "torch", "transformers", "vllm", "nltk")


@pytest.mark.parametrize("code", [
    "import pytest_mlperf.plugin, pytest_mlperf",
    "import pytest, contextlib, io\nwith contextlib.redirect_stdout(io.StringIO()): pytest.main(['--help'])",
])
def test_plugin_import_and_help_are_light(code: str) -> None:
    """No numpy, loadgen, torch, engines or NLTK at plugin import or at ``pytest --help``."""
    assert loaded_modules(code, HEAVY) == []
