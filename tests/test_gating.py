"""The regression gate end to end (pytester, real loadgen): a stored session, a backend made 10 %
slower failing a 5 % gate while the same backend at full speed passes, warnings instead of
comparisons, ``--mlperf-repeat`` gating on the median, thresholds from the command line.

The rate is set by the double, not measured by luck: ``paced`` completes the i-th query of a run
at ``start + i x PACE_S`` on a clock of its own (a late wake-up delays one answer, never the
ones after it), so a slowdown of 1.1 gives 0.909 of the tokens/s, give or take the lateness
of the last answer (a few ms in 0.6 s)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pytest_mlperf import BenchmarkRecord
from tests.fake_world import RECORDS_JSON, session_records, setup

PACED = r'''
import os, queue


class PacedBackend(CopyBackend):
    name = "paced"

    def start(self):
        self.pending = queue.Queue()
        self.runs = 0
        threading.Thread(target=self.work, daemon=True).start()

    def prepare(self, scenario):
        self.due = self.pace = None

    def issue(self, queries, responder):
        now = time.perf_counter()
        if self.pace is None:  # a run's first queries
            self.runs += 1
            pace = float(os.environ.get("PACE_S", "0.05")) * float(os.environ.get("PACE_SLOWDOWN", "1"))
            if self.runs == 1:
                pace *= float(os.environ.get("PACE_FIRST_RUN_SLOWDOWN", "1"))
            self.pace = pace
        for q in queries:
            self.pending.put((now, q, responder))

    def work(self):
        while True:
            arrived, q, responder = self.pending.get()
            self.due = max(arrived, self.due or arrived) + self.pace
            time.sleep(max(0.0, self.due - time.perf_counter()))
            out = self.answer(q.prompt)
            responder.first_token(q, out[0])
            responder.complete(q, out)


BACKENDS["paced"] = PacedBackend


@pytest.fixture(scope="session")
def mlperf_model():
    return SystemSpec.local("/nonexistent/paced-model")

'''


def _world(pytester: pytest.Pytester) -> list[str]:
    args = setup(pytester)
    pytester.makeconftest("from pathlib import Path\n" + (pytester.path / "conftest.py").read_text() + PACED)
    return [*args, RECORDS_JSON, "--mlperf-backend=paced", "--mlperf-mode=performance", "--mlperf-scenario=Offline",
            f"--mlperf-storage={pytester.path / 'stored'}"]


@pytest.fixture(scope="module")
def matplotlib_loaded(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The HTML report's plots drawn once outside pytester's inline runs: those drop the modules
    they imported, and matplotlib imported a second time in one process mixes its classes."""
    agg = pytest.importorskip("matplotlib.backends.backend_agg")
    from matplotlib.figure import Figure

    figure = Figure(layout="constrained")
    figure.subplots().plot([0, 1])
    agg.FigureCanvasAgg(figure).print_png(tmp_path_factory.mktemp("plot") / "warm.png")


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["n0", "n2"])
@pytest.mark.usefixtures("matplotlib_loaded")
def test_a_backend_made_10_percent_slower_fails_a_5_percent_gate(pytester: pytest.Pytester, monkeypatch,
                                                                 workers: list[str]) -> None:
    """Under xdist too: the controller finds the stored session, the worker that ran the test
    fails it, the controller saves and shows the deltas."""
    if workers:
        pytest.importorskip("xdist")
    args = [*_world(pytester), *workers]
    pytester.runpytest(*args, "--mlperf-save").assert_outcomes(passed=1)
    (saved,) = (pytester.path / "stored").rglob("0001_*.json")
    baseline = session_records(pytester)[0].figures.tokens_per_second
    assert baseline and json.loads(saved.read_text())["records"][0]["figures"]["tokens_per_second"] == baseline

    monkeypatch.setenv("PACE_SLOWDOWN", "1.1")
    step_summary = pytester.path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    result = pytester.runpytest(*args, "--mlperf-compare-fail=tokens_per_second:5%", "--html=report.html")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    m = re.search(r"tokens_per_second regressed: ([\d.]+) tokens/s < ([\d.]+) \(stored ([\d.]+) tokens/s in "
                  r"(\S+); --mlperf-compare-fail=tokens_per_second:5%\)", out)
    assert m, out[-3000:]
    new, bound, old = map(float, m.groups()[:3])
    assert old == pytest.approx(baseline, rel=1e-4) and bound == pytest.approx(0.95 * old, rel=1e-4)
    assert new / old == pytest.approx(1 / 1.1, abs=0.03)
    assert m.group(4).endswith(saved.name)
    result.stdout.fnmatch_lines(["*MLPerf comparison*", "test_bench.py::test_bench?Offline-performance?",
                                 "  figure * stored * now * ratio * change * bound * result",
                                 "  tokens_per_second * 0.9* -*% * 5% * REGRESSED",
                                 "  REGRESSED tokens_per_second regressed*"])
    # the same comparison wherever the verdict is: the JSON's gates, the step summary, the HTML
    (gate,) = json.loads((pytester.path / "records.json").read_text())["gates"]
    assert gate["name"] == "tokens_per_second" and gate["bound"] == "5%" and gate["method"] == "percent"
    assert gate["passed"] is False and gate["stored"] == pytest.approx(old, rel=1e-4)
    assert gate["value"] == pytest.approx(new, rel=1e-4) and gate["ratio"] == pytest.approx(new / old, rel=1e-4)
    assert gate["against"].endswith(saved.name) and gate["test"].endswith("[Offline-performance]")
    summary = step_summary.read_text()
    assert re.search(r"\| tokens_per_second \| [\d.,]+ \| [\d.,]+ \| 0\.9\d\d \| 5% \(percent\) \| \*\*REGRESSED\*\* \|",
                     summary), summary
    page = (pytester.path / "report.html").read_text()
    assert "Against the stored run" in page and "REGRESSED tokens_per_second x0.9" in page
    assert "Recent trend: tokens_per_second over the last 1 stored sessions" in page

    monkeypatch.delenv("PACE_SLOWDOWN")
    result = pytester.runpytest(*args, "--mlperf-compare-fail=tokens_per_second:5%", "--junitxml=junit.xml",
                                "-o", "junit_family=xunit1")
    result.assert_outcomes(passed=1)
    assert "REGRESSED" not in result.stdout.str()
    junit = (pytester.path / "junit.xml").read_text()
    assert 'name="mlperf.change.tokens_per_second"' in junit
    # Nothing was saved by the comparing sessions: still one stored file.
    assert len(list((pytester.path / "stored").rglob("*.json"))) == 1


def test_other_settings_or_hardware_warn_instead_of_comparing(pytester: pytest.Pytester, monkeypatch) -> None:
    args = _world(pytester)
    pytester.runpytest(*args, "--mlperf-save=baseline").assert_outcomes(passed=1)
    (saved,) = (pytester.path / "stored").rglob("0001_baseline.json")
    monkeypatch.setenv("PACE_SLOWDOWN", "1.5")
    result = pytester.runpytest(*args, "--mlperf-compare-fail=tokens_per_second:5%",
                                "--mlperf-setting=offline_expected_qps=5")
    result.assert_outcomes(passed=1)  # a warning, not a comparison
    result.stdout.fnmatch_lines(["*GateWarning*not compared with*other loadgen settings (target_qps 0.001 -> 5*",
                                 "*test_bench?Offline-performance?: not compared: other loadgen settings*"])

    other = json.loads(saved.read_text())
    for record in other["records"]:
        record["system"]["device"].update(gpus=["NVIDIA H200"] * 8, cpu="Intel Xeon Platinum 8480C")
    elsewhere = pytester.path / "from-the-gpu-runner.json"
    elsewhere.write_text(json.dumps(other))
    result = pytester.runpytest(*args, f"--mlperf-compare={elsewhere}", "--mlperf-compare-fail=tokens_per_second:5%")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*not compared: stored on other hardware (h200x8-*; this machine is cpu-*"])


def test_compare_finds_sessions_by_number_label_and_says_when_there_is_none(pytester: pytest.Pytester) -> None:
    args = _world(pytester)
    result = pytester.runpytest(*args, "--mlperf-compare")
    result.assert_outcomes(passed=1)  # the first pipeline has nothing to compare with yet
    result.stdout.fnmatch_lines(["mlperf: nothing to compare with: no stored session for this machine*"])
    pytester.runpytest(*args, "--mlperf-save=nightly").assert_outcomes(passed=1)
    pytester.runpytest(*args, "--mlperf-save").assert_outcomes(passed=1)
    names = sorted(p.name for p in (pytester.path / "stored").rglob("*.json"))
    assert names[0] == "0001_nightly.json" and names[1].startswith("0002_")
    result = pytester.runpytest(*args, "--mlperf-compare=nightly")
    result.stdout.fnmatch_lines(["mlperf: comparing with *0001_nightly.json (saved *", "*MLPerf comparison*"])
    result = pytester.runpytest(*args, "--mlperf-compare=7")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--mlperf-compare (ini mlperf_compare): no stored session '7'*0002_*"])


@pytest.mark.parametrize(("flag", "message"), [
    ("--mlperf-compare-fail=tokens:5%", "expected FIGURE:BOUND with FIGURE one of tokens_per_second, "),
    ("--mlperf-compare-fail=ttft_p99:x%", "the bound 'x%' is not a number >= 0"),
    ("--mlperf-threshold=llama3.1-8b:Server:ttft_p99_ms>=5", "ttft_p99_ms is a ceiling: write ttft_p99_ms<=5"),
    ("--mlperf-threshold=Offline:max_tpot_ms=5", "max_tpot_ms cannot apply to Offline"),
    ("--mlperf-threshold=latency<=5", "unknown gate 'latency'"),
    ("--mlperf-repeat=0", "expected a positive integer"),
    ("--mlperf-find-peak=fast", "expected a tolerance such as 5%"),
    ("--mlperf-compliance=TEST01", "expected one of: TEST06"),
])
def test_bad_gate_options_are_usage_errors(pytester: pytest.Pytester, flag: str, message: str) -> None:
    args = _world(pytester)
    result = pytester.runpytest(*args, flag)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str(), result.stderr.str()


def test_repeat_gates_on_the_median_and_shows_the_spread(pytester: pytest.Pytester, monkeypatch) -> None:
    """The first run of each session is three times slower: one run misses the throughput
    floor, the median of three meets it."""
    args = _world(pytester)
    monkeypatch.setenv("PACE_FIRST_RUN_SLOWDOWN", "3")
    floor = "--mlperf-threshold=llama3.1-8b:Offline:tokens_per_second>=150"  # fast ~260, slow ~87
    result = pytester.runpytest(*args, floor)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*tokens/s * < min_tokens_per_second 150*"])

    result = pytester.runpytest(*args, floor, "--mlperf-repeat=3")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "*MLPerf repeats*",
        "*test_bench?Offline-performance?: 3 runs, 3/3 VALID; tokens/s median * (min *, max *, spread *% of the median)",
    ])
    (record,) = session_records(pytester)
    rates = sorted(a.figures.tokens_per_second for a in record.repeats)
    assert record.figures.tokens_per_second == rates[1]  # the median, exactly
    assert rates[0] < 150 < rates[1]
    assert len({a.outdir for a in record.repeats}) == 3 and record.run.outdir in {a.outdir for a in record.repeats}


def test_command_line_thresholds_win_by_specificity(pytester: pytest.Pytester) -> None:
    """The marker's Server TTFT gate (unmeetable) is replaced by a rule for the same benchmark
    and scenario, but not by a wildcard one (less specific than the marker's)."""
    args = setup(pytester, settings='{"server_target_qps": 500, "min_duration_ms": 500}')
    bench = (pytester.path / "test_bench.py").read_text().replace(
        "settings=", 'thresholds={"Server": {"max_ttft_ms": 0.000001}},\n    settings=')
    pytester.makepyfile(test_bench=bench)
    common = [*args, "--mlperf-backend=copy", "--mlperf-scenario=Server", "--mlperf-mode=performance"]
    result = pytester.runpytest(*common, "--mlperf-threshold=*:*:ttft_p99_ms<=60000")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*p99 TTFT * ms > max_ttft_ms 1e-06*"])
    result = pytester.runpytest(*common, "--mlperf-threshold=llama3.1-8b:Server:ttft_p99_ms<=60000")
    result.assert_outcomes(passed=1)
    # ...and a rule can add a gate the marker lacks; the ini key takes the same rules.
    pytester.makeini("[pytest]\nmlperf_threshold =\n    Server:tokens_per_second>=1e9\n")
    result = pytester.runpytest(*common, "--mlperf-threshold=llama3.1-8b:Server:max_ttft_ms=60000")
    result.assert_outcomes(passed=1)  # the command line replaces the ini's list
    result = pytester.runpytest(*common)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*tokens/s * < min_tokens_per_second 1e+09*"])


def test_a_threshold_for_no_collected_benchmark_is_refused(pytester: pytest.Pytester) -> None:
    args = _world(pytester)
    result = pytester.runpytest(*args, "--mlperf-threshold=llama3.1-8B:tokens_per_second>=1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--mlperf-threshold (ini mlperf_threshold) llama3.1-8B:tokens_per_second>=1: no "
                                 "collected test declares benchmark 'llama3.1-8B' (they declare llama3.1-8b)*"])


def test_saved_records_survive_a_reload_and_number_on(tmp_path: Path) -> None:
    from pytest_mlperf.core.record import Device, Run, System, Verdict
    from pytest_mlperf.gate import storage

    record = BenchmarkRecord(benchmark="b", scenario="Offline", mode="performance", profile="quick",
                             system=System(backend="hf", model="m", device=Device(cpu="AMD EPYC 7B13", cpu_cores=2)),
                             run=Run(outdir="o"), verdict=Verdict(True))
    first = storage.save(tmp_path, [record], commit="3f2a9c1b0d4e5f60718293a4b5c6d7e8f9a0b1c2+dirty")
    second = storage.save(tmp_path, [record], commit=None, label="nightly run")
    assert first.name == "0001_3f2a9c1b0d4e-dirty.json" and second.name == "0002_nightly-run.json"
    assert first.parent.name.startswith("cpu-epyc-7b13-2c-")
    assert storage.find(tmp_path, first.parent.name, None).records == (record,)
    assert storage.find(tmp_path, first.parent.name, "1").path == first
    assert storage.find(tmp_path, first.parent.name, "3f2a9c").path == first
    assert not list(first.parent.glob(".saving-*"))


def test_repeats_combine_into_medians_and_the_majoritys_verdict(tmp_path: Path) -> None:
    from pytest_mlperf.core.record import Distribution, Figures
    from pytest_mlperf.core.vocabulary import Mode, Scenario
    from pytest_mlperf.loadgen.runner import RunResult
    from pytest_mlperf.run.repeat import combine

    def run(i: int, tokens: float, validity: str, ttft_ms: float, **kw) -> RunResult:
        return RunResult(outdir=tmp_path / f"run_{i}", scenario=Scenario.SERVER, mode=Mode.PERFORMANCE,
                         settings={"target_qps": 40}, validity=validity,
                         invalid_reason=None if validity == "VALID" else "TTFT constraint not met",
                         figures=Figures(tokens_per_second=tokens, ttft_ns=Distribution(p99=ttft_ms * 1e6)),
                         flags={"perf_constraints_met": validity == "VALID"}, wall_seconds=10.0, **kw)

    runs = [run(1, 100.0, "VALID", 900), run(2, 90.0, "INVALID", 2100, loadgen_errors=("e",)),
            run(3, 110.0, "VALID", 800)]
    combined = combine(runs)
    assert combined.figures.tokens_per_second == 100.0 and combined.figures.ttft_ns.p99 == 900e6
    assert combined.validity == "VALID" and combined.invalid_reason is None
    assert combined.flags == {"perf_constraints_met": True}
    assert combined.outdir == tmp_path / "run_1" and combined.wall_seconds == 30.0
    assert combined.loadgen_errors == ("e",)  # an error in any run still fails the test
    combined = combine([*runs[:2], run(4, 80.0, "INVALID", 2500, backend_error="boom")])
    assert combined.validity == "INVALID" and combined.backend_error == "boom"
    assert combined.invalid_reason == "2 of 3 runs INVALID: TTFT constraint not met"


def test_a_significance_gate_fails_a_slowdown_of_every_run_not_of_two_in_three(
        pytester: pytest.Pytester, monkeypatch) -> None:
    """``:mwu``: beyond the bound and significant over the repeats (docs/ci.md, 'Gates that hold
    under noise'). Three runs 10 % slower than three stored ones: p = 1/20, fails. The first of
    the three 20 % faster than before: the median is still 9 % down (a plain 5 % gate fails it), but the
    runs overlap the stored ones: not significant, passes."""
    args = [*_world(pytester), "--mlperf-repeat=3"]
    pytester.runpytest(*args, "--mlperf-save").assert_outcomes(passed=1)
    gate = "--mlperf-compare-fail=tokens_per_second:5%:mwu"
    monkeypatch.setenv("PACE_SLOWDOWN", "1.1")
    slow = pytester.runpytest(*args, gate)
    slow.assert_outcomes(failed=1)
    slow.stdout.fnmatch_lines(["*tokens_per_second regressed*--mlperf-compare-fail=tokens_per_second:5%:mwu); "
                               "significant: Mann-Whitney U over 3 stored and 3 runs now: p=0.05 (alpha 0.05)*"])

    monkeypatch.setenv("PACE_FIRST_RUN_SLOWDOWN", str(0.8 / 1.1))  # 20 % faster than the stored runs
    mixed = pytester.runpytest(*args, gate)
    mixed.assert_outcomes(passed=1)
    (found,) = json.loads((pytester.path / "records.json").read_text())["gates"]
    assert found["method"] == "mann-whitney" and found["passed"] and found["ratio"] < 0.95
    p = float(re.search(r"p=([\d.]+)", found["detail"]).group(1))  # type: ignore[union-attr]
    assert p > 0.05, found["detail"]
    plain = pytester.runpytest(*args, "--mlperf-compare-fail=tokens_per_second:5%")
    plain.assert_outcomes(failed=1)  # the plain bound on the median alone would have failed it


def test_confirm_reruns_a_failed_gate_and_fails_only_when_the_rerun_fails_too(
        pytester: pytest.Pytester, monkeypatch) -> None:
    args = _world(pytester)
    pytester.runpytest(*args, "--mlperf-save").assert_outcomes(passed=1)
    # margins far beyond a loaded machine's lateness (a few % of a 0.6 s run)
    gate = ["--mlperf-compare-fail=tokens_per_second:10%", "--mlperf-compare-confirm"]
    monkeypatch.setenv("PACE_FIRST_RUN_SLOWDOWN", "1.4")  # one slow run, then a normal one
    flake = pytester.runpytest(*args, *gate)
    flake.assert_outcomes(passed=1)
    flake.stdout.fnmatch_lines(["*GateWarning*a --mlperf-compare-fail bound failed, its rerun (*run_*) passed*"])
    (found,) = json.loads((pytester.path / "records.json").read_text())["gates"]
    assert found["passed"] and found["ratio"] < 0.9 and "rerun: " in found["detail"] and "(passed)" in found["detail"]

    monkeypatch.delenv("PACE_FIRST_RUN_SLOWDOWN")
    monkeypatch.setenv("PACE_SLOWDOWN", "1.4")  # every run slower: the rerun confirms it
    slow = pytester.runpytest(*args, *gate)
    slow.assert_outcomes(failed=1)
    slow.stdout.fnmatch_lines(["*tokens_per_second regressed*; confirmed by a rerun (*run_*)*"])
    (found,) = json.loads((pytester.path / "records.json").read_text())["gates"]
    assert not found["passed"] and "(failed)" in found["detail"]
