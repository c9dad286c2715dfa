"""The rules module: what an MLPerf-conformant run of each benchmark requires. Each test fails
when the rule it names is removed from :mod:`pytest_mlperf.gate.rules`."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from pytest_mlperf.core.vocabulary import Mode, Scenario
from pytest_mlperf.gate import rules
from pytest_mlperf.gate.rules import RunFacts, check_run
from pytest_mlperf.loadgen.settings import conf_values


def _official(scenario: Scenario) -> dict[str, Any]:
    """The effective settings loadgen's own parser gives llama3.1-8b with nothing changed."""
    return dict(conf_values(rules.conf_model("llama3.1-8b", scenario), scenario.loadgen_name, {}, None))


def _facts(scenario: Scenario = Scenario.SERVER, mode: Mode = Mode.PERFORMANCE, **changes: Any) -> RunFacts:
    settings = {**_official(scenario), **changes.pop("settings", {})}
    base = RunFacts(benchmark="llama3.1-8b", scenario=scenario, mode=mode, settings=settings,
                    samples=13368, dataset_sha256=rules.BENCHMARKS["llama3.1-8b"].dataset_sha256[0],
                    max_new_tokens=128, min_new_tokens=1, prefix_caching=False,
                    compliance=("TEST06",))
    return dataclasses.replace(base, **changes)


def _rules(facts: RunFacts) -> list[str]:
    return [b.rule for b in check_run(facts)]


@pytest.mark.parametrize("scenario", [Scenario.OFFLINE, Scenario.SERVER, Scenario.INTERACTIVE])
@pytest.mark.parametrize("mode", [Mode.PERFORMANCE, Mode.ACCURACY])
def test_an_official_run_breaks_no_rule(scenario: Scenario, mode: Mode) -> None:
    assert check_run(_facts(scenario, mode)) == []


def test_the_figures_come_from_loadgens_mlperf_conf() -> None:
    r8, edge = rules.rules_for("llama3.1-8b"), rules.rules_for("llama3.1-8b-edge")
    assert (r8.performance_sample_count(), edge.performance_sample_count()) == (13368, 5000)
    assert r8.min_duration_ms(Scenario.SERVER) == 600_000
    assert (r8.min_query_count(Scenario.OFFLINE), edge.min_query_count(Scenario.OFFLINE)) == (13368, 5000)
    assert r8.conf(Scenario.INTERACTIVE, "ttft_latency") == 500  # the -interactive model key
    assert r8.conf(Scenario.SERVER, "ttft_latency") == 2000
    assert rules.rules_for("llama2-70b-99.9").performance_sample_count() == 24576


@pytest.mark.parametrize(("change", "rule"), [
    ({"prefix_caching": True}, "prefix_caching"),
    ({"request_fields": {"temperature": 0.7}}, "sampling"),
    ({"request_fields": {"repetition_penalty": 1.1}}, "sampling"),
    ({"max_new_tokens": 64}, "generation"),
    ({"min_new_tokens": 2}, "generation"),
    ({"request_fields": {"max_tokens": 256}}, "generation"),
    ({"samples": 64}, "subset"),
    ({"dataset_sha256": "0" * 64}, "dataset"),
    ({"settings": {"performance_sample_count_override": 100}}, "performance_sample_count"),
    ({"settings": {"min_duration_ms": 10_000}}, "min_duration"),
    ({"settings": {"sample_concatenate_permutation": False}}, "sample_concatenate_permutation"),
    ({"settings": {"use_token_latencies": False}}, "use_token_latencies"),
    ({"settings": {"ttft_latency": 3_000_000_000}}, "latency_limit"),
    ({"settings": {"tpot_latency": 200_000_000}}, "latency_limit"),
    ({"settings": {"server_target_latency_percentile": 0.9}}, "latency_limit"),
    ({"compliance": ()}, "compliance"),
])
def test_each_rule_names_its_breach(change: dict[str, Any], rule: str) -> None:
    breaches = check_run(_facts(**change))
    assert [b.rule for b in breaches] == [rule], breaches


def test_offline_needs_its_query_count_and_accuracy_the_whole_data_set() -> None:
    assert _rules(_facts(Scenario.OFFLINE, settings={"min_query_count": 64})) == ["min_query_count"]
    breach, = check_run(_facts(Scenario.OFFLINE, Mode.ACCURACY, samples=64))
    assert breach.message == "64 of 13,368 samples: not an MLPerf accuracy result"
    # accuracy runs are not held to performance settings
    assert check_run(_facts(Scenario.OFFLINE, Mode.ACCURACY, settings={"min_duration_ms": 0})) == []


def test_interactive_is_held_to_its_own_tighter_limits() -> None:
    assert _rules(_facts(Scenario.INTERACTIVE, settings={"ttft_latency": 2_000_000_000})) == ["latency_limit"]


def test_test06_only_where_the_benchmark_requires_it() -> None:
    edge = dataclasses.replace(
        _facts(Scenario.OFFLINE), benchmark="llama3.1-8b-edge", samples=5000, compliance=(),
        dataset_sha256=rules.BENCHMARKS["llama3.1-8b-edge"].dataset_sha256[0],
        settings=dict(conf_values("llama3_1-8b-edge", "Offline", {}, None)))
    assert check_run(edge) == []
    assert _rules(_facts(Scenario.OFFLINE, compliance=())) == ["compliance"]


def test_scenarios_and_system_types() -> None:
    assert rules.system_type_of("llama3.1-8b") == "datacenter"
    assert rules.system_type_of("llama3.1-8b-edge") == "edge"
    assert rules.system_type_of("llama2-70b-99.9") == "datacenter"
    assert rules.system_type_of("my-model") is None
    assert rules.missing_scenarios("datacenter", ["Offline"]) == ["Server or Interactive"]
    assert rules.missing_scenarios("datacenter", ["Offline", "Interactive"]) == []
    assert rules.missing_scenarios("edge", ["Offline", "Server"]) == ["SingleStream"]
    assert rules.missing_scenarios("edge", [Scenario.OFFLINE, Scenario.SINGLE_STREAM]) == []
    edge_server = dataclasses.replace(_facts(), benchmark="llama3.1-8b-edge", samples=5000,
                                      dataset_sha256="")
    assert "scenario" in _rules(edge_server)


def test_an_unknown_benchmark_is_not_mlperf() -> None:
    assert _rules(dataclasses.replace(_facts(), benchmark="tiny-llama")) == ["benchmark"]
