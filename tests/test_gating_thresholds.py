"""``--mlperf-threshold`` rules: their syntax, the marker's gate names, and which gate wins
(loadgen's order: benchmark:scenario > *:scenario > benchmark:* > *:*; the command line over
the marker at the same level)."""

from __future__ import annotations

import pytest

from pytest_mlperf.core.vocabulary import Scenario
from pytest_mlperf.gate.thresholds import merged, parse_rule, unmatched
from pytest_mlperf.spec import spec_from_marker

SERVER, OFFLINE, INTERACTIVE = Scenario.SERVER, Scenario.OFFLINE, Scenario.INTERACTIVE


@pytest.mark.parametrize(("text", "benchmark", "scenario", "gate", "value"), [
    ("llama3.1-8b:Server:ttft_p99_ms<=2000", "llama3.1-8b", SERVER, "max_ttft_ms", 2000.0),
    ("*:server:tpot_p99_ms <= 80", None, SERVER, "max_tpot_ms", 80.0),
    ("Interactive:tokens_per_second>=5e3", None, INTERACTIVE, "min_tokens_per_second", 5000.0),
    ("llama3.1-8b-edge:samples_per_second>=2", "llama3.1-8b-edge", None, "min_samples_per_second", 2.0),
    ("min_tokens_per_second=100", None, None, "min_tokens_per_second", 100.0),
    ("llama3.1-8b:*:max_ttft_ms=1500", "llama3.1-8b", None, "max_ttft_ms", 1500.0),
])
def test_rules_parse(text, benchmark, scenario, gate, value) -> None:
    rule = parse_rule(text)
    assert (rule.benchmark, rule.scenario, rule.gate, rule.value) == (benchmark, scenario, gate, value)
    assert str(rule) == text


@pytest.mark.parametrize(("text", "message"), [
    ("a:b:c:tokens_per_second>=1", "expected [BENCHMARK:][SCENARIO:]GATE"),
    ("llama3.1-8b:Sever:ttft_p99_ms<=5", "'Sever' is not one of Offline, Server"),
    ("tokens_per_second<=5", "tokens_per_second is a floor: write tokens_per_second>=5"),
    ("max_ttft_ms<=5", "max_ttft_ms is a marker gate name: write max_ttft_ms=5"),
    ("ttft_p99_ms<=0", "the bound '0' is not a positive number"),
    ("ttft_p99_ms<=fast", "the bound 'fast' is not a positive number"),
    ("Offline:ttft_p99_ms<=5", "ttft_p99_ms cannot apply to Offline"),
])
def test_bad_rules_say_what_is_wrong(text, message) -> None:
    with pytest.raises(ValueError) as info:
        parse_rule(text)
    assert message in str(info.value)


def _marker(**kwargs) -> pytest.Mark:
    return pytest.mark.mlperf(benchmark="llama3.1-8b", scenarios=("Offline", "Server", "Interactive"),
                              **kwargs).mark


def _merged(marker: pytest.Mark, *rules: str):
    spec = spec_from_marker(marker, "t")
    return merged(spec, marker.kwargs, [parse_rule(r) for r in rules])


def test_the_most_specific_gate_wins() -> None:
    marker = _marker(max_ttft_ms=3000, thresholds={"Server": {"max_ttft_ms": 1500}})
    gates = _merged(marker)
    assert (gates[SERVER].max_ttft_ms, gates[INTERACTIVE].max_ttft_ms, gates[OFFLINE].max_ttft_ms) == (1500, 3000, None)
    # *:* and benchmark:* do not beat the marker's Server gate; *:Server beats its top level.
    gates = _merged(marker, "ttft_p99_ms<=9", "llama3.1-8b:ttft_p99_ms<=8", "Interactive:ttft_p99_ms<=7")
    assert (gates[SERVER].max_ttft_ms, gates[INTERACTIVE].max_ttft_ms) == (1500, 7)
    # benchmark:* ties the marker's top level (both benchmark:*): the command line wins there.
    gates = _merged(_marker(max_ttft_ms=3000), "llama3.1-8b:ttft_p99_ms<=8")
    assert gates[SERVER].max_ttft_ms == 8 and gates[INTERACTIVE].max_ttft_ms == 8
    # benchmark:scenario beats everything; among equals the last rule wins.
    gates = _merged(marker, "llama3.1-8b:Server:ttft_p99_ms<=2000", "llama3.1-8b:Server:max_ttft_ms=2500")
    assert gates[SERVER].max_ttft_ms == 2500


def test_rules_for_other_benchmarks_or_non_streaming_scenarios_do_not_apply() -> None:
    gates = _merged(_marker(), "llama3.1-8b-edge:tokens_per_second>=1", "tpot_p99_ms<=80", "tokens_per_second>=5")
    assert gates[OFFLINE].as_dict() == {"min_tokens_per_second": 5.0}
    assert gates[SERVER].as_dict() == {"min_tokens_per_second": 5.0, "max_tpot_ms": 80.0}


def test_rules_for_benchmarks_no_test_declares_are_found() -> None:
    rules = [parse_rule("llama3.1-8B:tokens_per_second>=1"), parse_rule("tokens_per_second>=1")]
    assert unmatched(rules, ["llama3.1-8b"]) == rules[:1]
