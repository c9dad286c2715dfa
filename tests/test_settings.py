"""Loadgen settings: mlperf.conf < profile < user.conf < marker < command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_mlperf.core.vocabulary import Mode, Profile, Scenario
from pytest_mlperf.loadgen.settings import SettingsError, SettingsPlan, check_overrides, conf_model


def plan(scenario: Scenario, profile: Profile = Profile.OFFICIAL, **kw) -> SettingsPlan:
    return SettingsPlan(benchmark=kw.pop("benchmark", "llama3.1-8b"), scenario=scenario, profile=profile,
                        total_count=kw.pop("total", 13368), performance_count=kw.pop("perf", 13368), **kw)


def test_conf_model_keys() -> None:
    assert conf_model("llama3.1-8b", Scenario.SERVER) == "llama3_1-8b"
    assert conf_model("llama3.1-8b", Scenario.INTERACTIVE) == "llama3_1-8b-interactive"
    assert conf_model("llama3.1-8b-edge", Scenario.SINGLE_STREAM) == "llama3_1-8b-edge"


def test_builtin_mlperf_conf_values_apply_in_every_test_of_a_process() -> None:
    # Built twice in one process: loadgen's own FromConfig would only apply mlperf.conf once.
    for _ in range(2):
        offline = plan(Scenario.OFFLINE).build(Mode.PERFORMANCE)
        assert offline.min_query_count == 13368
        assert offline.min_duration_ms == 600000
        assert offline.use_token_latencies
    server = plan(Scenario.SERVER).build(Mode.PERFORMANCE)
    assert (server.ttft_latency, server.tpot_latency) == (2_000_000_000, 100_000_000)
    interactive = plan(Scenario.INTERACTIVE).build(Mode.PERFORMANCE)
    assert (interactive.ttft_latency, interactive.tpot_latency) == (500_000_000, 30_000_000)
    edge = plan(Scenario.OFFLINE, benchmark="llama3.1-8b-edge", total=5000, perf=5000).build(Mode.PERFORMANCE)
    assert edge.min_query_count == 5000 and edge.performance_sample_count_override == 5000


def test_quick_profile_shortens_runs_to_the_data_set() -> None:
    quick = plan(Scenario.OFFLINE, Profile.QUICK, total=64, perf=64).build(Mode.PERFORMANCE)
    assert quick.min_duration_ms == 0 and quick.min_query_count == 64
    assert quick.performance_sample_count_override == 64
    server = plan(Scenario.SERVER, Profile.QUICK, total=64, perf=64).build(Mode.PERFORMANCE)
    assert server.min_duration_ms == 10_000 and server.min_query_count == 838  # 2 late tolerated
    assert (server.ttft_latency, server.tpot_latency) == (2_000_000_000, 100_000_000)


def test_quick_single_stream_issues_the_data_set_once_not_minutes_of_queries(tmp_path: Path) -> None:
    """llama3.1-8b-edge's 5 ms expected latency made a 10 s quick run lay out 2,048 queries
    (3.5 minutes on an H200 at ~10 queries/s); the quick run issues the data set once."""
    from pytest_mlperf.backends.base import SystemSpec
    from pytest_mlperf.loadgen.logs import read_detail
    from pytest_mlperf.loadgen.runner import run_loadgen
    from tests.test_logs import Instant

    quick = plan(Scenario.SINGLE_STREAM, Profile.QUICK, benchmark="llama3.1-8b-edge", total=256, perf=256)
    result = run_loadgen(plan=quick, mode=Mode.PERFORMANCE, backend=Instant(SystemSpec.local(tmp_path)),
                         prompts=[[1, 2]] * 256, outdir=tmp_path / "run")
    assert result.validity == "VALID", result.flags
    detail = read_detail(tmp_path / "run" / "mlperf_log_detail.txt")
    assert 64 <= detail.get("generated_query_count") <= 256


def test_quick_server_profile_can_pass_early_stopping(tmp_path: Path) -> None:
    """The quick profile's query count lets a fast SUT be VALID (early stopping included)."""
    from pytest_mlperf.backends.base import SystemSpec
    from pytest_mlperf.loadgen.runner import run_loadgen
    from tests.test_logs import Instant

    quick = plan(Scenario.SERVER, Profile.QUICK, total=16, perf=16,
                 cli_overrides={"server_target_qps": 400, "min_duration_ms": 100})
    result = run_loadgen(plan=quick, mode=Mode.PERFORMANCE, backend=Instant(SystemSpec.local(tmp_path)),
                         prompts=[[1, 2]] * 16, outdir=tmp_path / "run")
    assert result.validity == "VALID", result.flags
    assert result.flags["early_stopping_met"]


def test_precedence_user_conf_then_marker_then_cli(tmp_path: Path) -> None:
    user_conf = tmp_path / "user.conf"
    user_conf.write_text("*.Server.target_qps = 7\nllama3_1-8b.Server.target_qps = 3\n*.*.min_duration = 1234\n")
    only_conf = plan(Scenario.SERVER, user_conf=user_conf).build(Mode.PERFORMANCE)
    assert only_conf.server_target_qps == 3.0  # model.scenario.key beats *.scenario.key
    assert only_conf.min_duration_ms == 1234
    marker = plan(Scenario.SERVER, user_conf=user_conf, marker_overrides={"server_target_qps": 5}).build(Mode.PERFORMANCE)
    assert marker.server_target_qps == 5.0 and marker.min_duration_ms == 1234
    cli = plan(Scenario.SERVER, user_conf=user_conf, marker_overrides={"server_target_qps": 5},
               cli_overrides={"server_target_qps": 9}).build(Mode.PERFORMANCE)
    assert cli.server_target_qps == 9.0


def test_accuracy_mode() -> None:
    import mlperf_loadgen as lg

    assert plan(Scenario.OFFLINE).build(Mode.ACCURACY).mode == lg.TestMode.AccuracyOnly


def test_bad_user_conf_names_the_file(tmp_path: Path) -> None:
    user_conf = tmp_path / "user.conf"
    user_conf.write_text("llama3_1-8b.Server.target_qps = fast\n")
    with pytest.raises(SettingsError, match=r"user\.conf: loadgen could not read"):
        plan(Scenario.SERVER, user_conf=user_conf).build(Mode.PERFORMANCE)


def test_unknown_override_names_its_source() -> None:
    with pytest.raises(SettingsError, match=r"the mlperf marker: 'target_qps' is not a loadgen TestSettings field"):
        plan(Scenario.SERVER, marker_overrides={"target_qps": 3}).build(Mode.PERFORMANCE)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"server_target_qs": 3}, "'server_target_qs' is not a loadgen TestSettings field; did you mean server_target_qps"),
        ({"min_query_count": 10.5}, "min_query_count = 10.5 is not a int"),
        ({"server_target_qps": "fast"}, "server_target_qps = 'fast' is not a float"),
        ({"use_token_latencies": 2}, "use_token_latencies = 2 is not a bool"),
        ({"min_duration_ms": -1}, "min_duration_ms = -1 must not be negative"),
    ],
)
def test_overrides_are_checked_without_running(values: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        check_overrides(values, "here")


def test_overrides_are_converted_to_loadgens_types() -> None:
    assert check_overrides({"min_query_count": 12.0, "server_target_qps": 3, "use_token_latencies": 1}, "x") == {
        "min_query_count": 12, "server_target_qps": 3.0, "use_token_latencies": True}
