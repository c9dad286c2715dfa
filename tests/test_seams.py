"""The seams: the typed record (through JSON and xdist), the backend factory hook with a served
system, the marker validated at collection, per-scenario thresholds, the run in the call phase,
and both published data set layouts. Real loadgen, test-double engines (tests/fake_world.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_mlperf import BenchmarkRecord
from pytest_mlperf.core.record import (
    Accuracy,
    Device,
    Distribution,
    Figures,
    RecordError,
    Run,
    System,
    Target,
    Verdict,
)
from tests.fake_world import RECORDS_JSON, session_records, setup


def test_record_round_trips_through_json() -> None:
    record = BenchmarkRecord(
        benchmark="llama3.1-8b", scenario="Server", mode="performance", profile="quick",
        system=System(backend="vllm", model="m", kind="served", endpoints=("http://a:8000",),
                      engine_args={"max_num_seqs": 8}, device=Device(cpu="x", cpu_cores=2, gpus=("H200", "H200"))),
        run=Run(outdir="out", validity="VALID", flags={"min_queries_met": True}, loadgen_errors=("e",)),
        verdict=Verdict(False, ("p99 TTFT 3.0 ms > max_ttft_ms 2",)),
        figures=Figures(tokens_per_second=10.5, query_count=460, ttft_ns=Distribution(p99=3e6, mean=1e6)),
        accuracy=Accuracy(rouge1=40.0, gen_num=3, target=Target(name="t", ratio=0.99, rouge1=41.0)),
    )
    again = BenchmarkRecord.loads(json.dumps(json.loads(record.dumps())))
    assert again == record
    assert again.system.device.gpu_count == 2 and again.figures.ttft_ns.ms("p99") == 3.0
    assert again.accuracy is not None and again.accuracy.percent_of_target("rouge1") == pytest.approx(97.56, abs=0.01)


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(schema_version=99), "schema_version 99"),
    (lambda d: d.pop("system"), "record: the field 'system' is missing"),
    (lambda d: d["figures"].update(tokens_per_second="fast"), "record.figures.tokens_per_second: expected a number"),
])
def test_bad_stored_record_is_named(change, message) -> None:
    data = BenchmarkRecord(benchmark="b", scenario="Offline", mode="performance", profile="quick",
                           system=System(backend="hf", model="m"), run=Run(outdir="o"),
                           verdict=Verdict(True)).to_json()
    change(data)
    with pytest.raises(RecordError, match=message):
        BenchmarkRecord.from_json(data)


def _comparable(record: BenchmarkRecord) -> dict:
    """What must not depend on -n: everything but measured times and rates and the folder."""
    data = record.to_json()
    for key in ("figures", "timings"):
        data.pop(key)
    data["run"].pop("outdir")
    data["system"].pop("model")  # the fake world's model folder is a per-worker tmp_path
    data["system"].pop("devices")  # each xdist worker is pinned to its own device id
    data.pop("worker")  # the xdist worker that ran it ("" without -n)
    return data


def test_xdist_gives_the_same_records(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    args = setup(pytester)
    pytester.runpytest("--mlperf-backend=copy", "--mlperf-scenario=Offline,Server",
                       "--mlperf-setting=server_target_qps=200", RECORDS_JSON, *args).assert_outcomes(passed=4)
    serial = session_records(pytester)
    pytester.runpytest("-n", "2", "--mlperf-backend=copy", "--mlperf-scenario=Offline,Server",
                       "--mlperf-setting=server_target_qps=200", RECORDS_JSON, *args).assert_outcomes(passed=4)
    parallel = session_records(pytester)
    assert len(serial) == 4
    assert sorted(map(_comparable, serial), key=lambda d: d["nodeid"]) == \
        sorted(map(_comparable, parallel), key=lambda d: d["nodeid"])
    perf = next(r for r in parallel if r.mode == "performance" and r.scenario == "Server")
    assert perf.run.validity == "VALID" and perf.figures.ttft_ns.p99 is not None
    assert perf.run.settings["target_qps"] == 200  # the detail log's effective settings
    assert perf.system.versions["mlcommons-loadgen"] and perf.system.device.cpu_cores >= 1
    acc = next(r for r in parallel if r.mode == "accuracy")
    assert acc.accuracy is not None and acc.accuracy.rouge1 == 100.0 and acc.accuracy.target is not None


SERVED = """

class Served(CopyBackend):
    name = "served-double"

    def start(self):
        assert self.system.kind == "served", self.system
        Path("started.json").write_text(json.dumps(list(self.system.endpoints)))

    def describe(self):
        return {"engine": "openai-double", "engine_version": "1.0",
                "engine_args": dict(self.engine_args), "endpoints_seen": list(self.system.endpoints)}


def pytest_mlperf_make_backend(config, name, scenario, system, engine_args, generation, tokenizer):
    if name == "served-double":
        return Served(system, engine_args, generation, tokenizer)


@pytest.fixture(scope="session")
def mlperf_model():
    return SystemSpec.served("tiny-llama", ["http://10.0.0.1:8000", "http://10.0.0.2:8000"])
"""


def test_backend_from_a_conftest_hook_with_a_served_system(pytester: pytest.Pytester) -> None:
    args = setup(pytester)
    conftest = (pytester.path / "conftest.py").read_text()
    pytester.makeconftest("from pathlib import Path\n" + conftest + SERVED)
    result = pytester.runpytest("--mlperf-backend=served-double", "--mlperf-engine-arg=max_num_seqs=4", RECORDS_JSON, *args)
    result.assert_outcomes(passed=2)
    assert json.loads((pytester.path / "started.json").read_text()) == ["http://10.0.0.1:8000", "http://10.0.0.2:8000"]
    system = session_records(pytester)[0].system
    assert (system.kind, system.model, system.engine, system.engine_args) == (
        "served", "tiny-llama @ http://10.0.0.1:8000, http://10.0.0.2:8000", "openai-double", {"max_num_seqs": 4})
    assert system.extra["endpoints_seen"] == ["http://10.0.0.1:8000", "http://10.0.0.2:8000"]


@pytest.mark.parametrize(("marker", "message"), [
    ('baseline={"rouge_1": 40}', "baseline: unknown key(s) ['rouge_1']; known: rouge1, rouge2, rougeL, rougeLsum"),
    ('baseline="llama9"', "baseline='llama9' is not one of"),
    ('baseline={"rouge1": "high"}', "baseline['rouge1'] must be a positive number, got 'high'"),
    ('settings={"server_target_qs": 3}', "settings: 'server_target_qs' is not a loadgen TestSettings field"),
    ('settings={"min_query_count": "many"}', "settings: min_query_count = 'many' is not a int"),
    ('scenarios=("Offline",), max_ttft_ms=100', "max_ttft_ms cannot apply: none of the declared scenarios (Offline)"),
    ('thresholds={"Offline": {"max_tpot_ms": 5}}', "thresholds['Offline']: max_tpot_ms cannot apply to Offline"),
    ('scenarios=("Offline",), thresholds={"Server": {"max_ttft_ms": 5}}', "thresholds: Server is not among the declared scenarios (Offline)"),
    ('thresholds={"Server": {"max_ttft": 5}}', "thresholds['Server']: unknown gate 'max_ttft'"),
    ('rouge_ratio=1.5', "rouge_ratio must be a number in (0, 1], got 1.5"),
    ('engine_args=["tp=2"]', "engine_args must be a mapping"),
    ('scenarios=("Offline", "Server"), min_tokens_per_second=-3', "min_tokens_per_second must be a positive number, got -3"),
])
def test_marker_mistakes_fail_collection(pytester: pytest.Pytester, marker: str, message: str) -> None:
    args = setup(pytester)
    if "scenarios=" not in marker:
        marker = 'scenarios=("Offline", "Server"), ' + marker
    pytester.makepyfile(test_bench=(
        "import pytest\n"
        f"pytestmark = pytest.mark.mlperf(benchmark='llama3.1-8b', {marker})\n"
        "def test_x(mlperf_result): pass\n"))
    result = pytester.runpytest("--mlperf-backend=copy", *args)
    assert result.ret == pytest.ExitCode.INTERRUPTED, result.stdout.str()[-2000:]
    assert "test_bench.py::test_x: mlperf marker " in result.stdout.str()
    assert message in result.stdout.str(), result.stdout.str()[-2000:]
    assert not (pytester.path / "results").exists()  # nothing ran


def test_latency_gates_apply_to_their_scenarios_only(pytester: pytest.Pytester) -> None:
    args = setup(pytester, settings='{"server_target_qps": 200}')
    bench = (pytester.path / "test_bench.py").read_text().replace(
        "settings=", 'thresholds={"Server": {"max_ttft_ms": 0.000001}},\n    settings=')
    pytester.makepyfile(test_bench=bench)
    result = pytester.runpytest("--mlperf-backend=copy", "--mlperf-scenario=Offline,Server",
                                "--mlperf-mode=performance", *args)
    result.assert_outcomes(passed=1, failed=1)  # Offline passes; Server misses its TTFT gate
    result.stdout.fnmatch_lines(["FAIL llama3.1-8b Server performance *", "    p99 TTFT * ms > max_ttft_ms 1e-06"])


def test_top_level_latency_gate_skips_offline(pytester: pytest.Pytester) -> None:
    args = setup(pytester)
    bench = (pytester.path / "test_bench.py").read_text().replace("settings=", "max_tpot_ms=1000,\n    settings=")
    pytester.makepyfile(test_bench=bench)
    result = pytester.runpytest("--mlperf-backend=copy", "--mlperf-mode=performance", *args)
    result.assert_outcomes(passed=1)


START_MARKER = """

_original_start = CopyBackend.start

def _start(self):
    Path("engine-started").write_text("yes")
    _original_start(self)

CopyBackend.start = _start
"""


def test_setup_only_starts_no_engine_and_runs_no_loadgen(pytester: pytest.Pytester) -> None:
    args = setup(pytester)
    pytester.makeconftest("from pathlib import Path\n" + (pytester.path / "conftest.py").read_text() + START_MARKER)
    result = pytester.runpytest("--setup-only", "--mlperf-backend=copy", *args)
    assert result.ret == 0
    assert not (pytester.path / "engine-started").exists()
    assert not list(pytester.path.rglob("mlperf_log_detail.txt"))
    # ...while a real run starts it, in the call phase (the run's time is booked there).
    result = pytester.runpytest("--mlperf-backend=copy", "--mlperf-mode=performance", "--durations=0", "-vv", *args)
    result.assert_outcomes(passed=1)
    assert (pytester.path / "engine-started").exists()
    reports = {r.when: r for r in result.reprec.getreports("pytest_runtest_logreport")}
    assert reports["call"].duration > reports["setup"].duration


def test_a_bad_user_conf_is_refused_before_any_test_runs(pytester: pytest.Pytester) -> None:
    args = setup(pytester)
    (pytester.path / "user.conf").write_text("llama3_1-8b.Offline.min_query_count = many\n")
    result = pytester.runpytest("--mlperf-backend=copy", "--mlperf-mode=performance",
                                f"--mlperf-user-conf={pytester.path / 'user.conf'}", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # more: tests/test_reliability.py
    result.stderr.fnmatch_lines(["*--mlperf-user-conf*user.conf:1: value 'many' is not a number*"])


@pytest.mark.parametrize("layout", ["mapping", "string"])
def test_both_published_data_set_layouts_run(pytester: pytest.Pytester, layout: str) -> None:
    args = setup(pytester)
    data = pytester.path / "data.json"
    records = json.loads(data.read_text())
    for record in records:
        if layout == "string":
            record["instruction"] = record["instruction"]["llama"]
    data.write_text(json.dumps(records))
    result = pytester.runpytest("--mlperf-backend=copy", *args)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["llama3.1-8b *Offline *acc *PASS * 100.0 100.0 100.0 100.0"])


def test_record_reaches_the_result_hook(pytester: pytest.Pytester) -> None:
    args = setup(pytester)
    pytester.makeconftest((pytester.path / "conftest.py").read_text() + """
def pytest_mlperf_result(item, record):
    from pathlib import Path
    Path(record.mode + ".verdict").write_text(str(record.verdict.passed))
""")
    pytester.runpytest("--mlperf-backend=garble", *args).assert_outcomes(passed=1, failed=1)
    assert (Path(pytester.path) / "accuracy.verdict").read_text() == "False"
    assert (Path(pytester.path) / "performance.verdict").read_text() == "True"
