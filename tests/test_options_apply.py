"""An option that cannot apply to anything collected is a usage error at collection, naming it
and why (issue 19). Before, each silently did nothing: ``--mlperf-find-peak`` on Offline, a TTFT
gate in an Offline-only session, a threshold for a benchmark no test declares (a warning)."""

from __future__ import annotations

import pytest

from tests.fake_world import setup

# (case, flags, what the error says); the fake world's benchmark is llama3.1-8b
CASES = [
    ("find-peak-offline", ["--mlperf-scenario=Offline", "--mlperf-find-peak=0.1"],
     "--mlperf-find-peak (ini mlperf_find_peak): searches the target QPS of Server and Interactive"),
    ("find-peak-accuracy-only", ["--mlperf-scenario=Server", "--mlperf-mode=accuracy", "--mlperf-find-peak=0.1"],
     "no collected test makes one (they run Server accuracy)"),
    ("ttft-gate-offline", ["--mlperf-scenario=Offline", "--mlperf-threshold=ttft_p99_ms<=2000"],
     "TTFT and TPOT are measured in the streaming scenarios only"),
    ("gate-for-a-scenario-not-run", ["--mlperf-scenario=Offline", "--mlperf-threshold=Server:tokens_per_second>=1"],
     "--mlperf-threshold Server:tokens_per_second>=1: no collected performance test it applies to"),
    ("gate-for-an-unknown-benchmark", ["--mlperf-scenario=Offline", "--mlperf-threshold=llama2-70b:tokens_per_second>=1"],
     "no collected test declares benchmark 'llama2-70b'"),
]


@pytest.mark.parametrize(("flags", "says"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_an_option_that_applies_to_nothing_collected_is_refused(pytester: pytest.Pytester, flags, says) -> None:
    args = setup(pytester)
    result = pytester.runpytest(*args, "--mlperf-backend=copy", *flags)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()[-2000:]
    assert says in result.stderr.str(), result.stderr.str()
    assert not (pytester.path / "results").exists() or not list((pytester.path / "results").rglob("mlperf_log_detail.txt"))


def test_the_same_options_where_they_apply_are_taken(pytester: pytest.Pytester) -> None:
    args = setup(pytester)
    result = pytester.runpytest(*args, "--mlperf-backend=copy", "--mlperf-scenario=Offline,Server",
                                "--mlperf-mode=performance", "--mlperf-threshold=Server:ttft_p99_ms<=60000",
                                "--collect-only")
    assert result.ret == pytest.ExitCode.OK, result.stderr.str()


def test_a_corrupt_stored_session_stops_the_session_by_name(pytester: pytest.Pytester) -> None:
    """Was a warning ('nothing to compare with'), and the regression gate silently off."""
    args = [*setup(pytester), "--mlperf-backend=copy", "--mlperf-scenario=Offline", "--mlperf-mode=performance",
            f"--mlperf-storage={pytester.path / 'stored'}"]
    pytester.runpytest(*args, "--mlperf-save").assert_outcomes(passed=1)
    (saved,) = (pytester.path / "stored").rglob("0001_*.json")
    saved.write_text(saved.read_text()[:100])  # cut short (a full disk, a killed copy)
    result = pytester.runpytest(*args, "--mlperf-compare-fail=tokens_per_second:5%")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()[-2000:]
    result.stderr.fnmatch_lines([f"*--mlperf-compare (ini mlperf_compare): {saved}: cannot read a stored session*"])


def test_a_user_conf_aimed_only_at_another_benchmark_is_refused(pytester: pytest.Pytester) -> None:
    args = setup(pytester)
    conf = pytester.path / "user.conf"
    conf.write_text("llama2-70b.Offline.min_duration = 1000\n")
    result = pytester.runpytest(*args, "--mlperf-backend=copy", "--mlperf-scenario=Offline", f"--mlperf-user-conf={conf}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()[-2000:]
    result.stderr.fnmatch_lines(["*--mlperf-user-conf (ini mlperf_user_conf) *user.conf: no line applies to a collected "
                                 "test (its lines name llama2-70b.Offline; the tests run llama3_1-8b.Offline)*"])
    conf.write_text("llama2-70b.Offline.min_duration = 1000\n*.Offline.min_duration = 1000\n")
    result = pytester.runpytest(*args, "--mlperf-backend=copy", "--mlperf-scenario=Offline",
                                f"--mlperf-user-conf={conf}", "--collect-only")
    assert result.ret == pytest.ExitCode.OK, result.stderr.str()
