"""What an MLPerf-conformant run of each benchmark requires: one place, data-driven.

Per benchmark (:data:`BENCHMARKS`): its system type, the size of its data set (an accuracy run
covers all of it), its generation (greedy, ``max_new_tokens`` / ``min_new_tokens`` of the
reference SUT), whether TEST06 is required; the rest (performance sample count, minimum
duration and query counts, sample concatenation, token latencies, latency limits) is read from
loadgen's built-in mlperf.conf with loadgen's precedence, so it moves with loadgen. Scenario
sets per system type (:data:`REQUIRED_SCENARIOS`, :func:`missing_scenarios`) are MLCommons'
submission checker's (v6.x ``required-scenarios-*`` and its "(one of) Interactive or Server").

:func:`check_run` lists what keeps one run from being an MLPerf one, each a :class:`Breach`
naming its rule; the rules in :data:`REFUSED_BY_OFFICIAL` are the ones ``--mlperf-profile=
official`` refuses before any engine starts. No cross-query (prefix) caching is a rule of every
benchmark. Pure logic: no engine, no loadgen import (mlperf.conf is read as text).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pytest_mlperf.core.vocabulary import Mode, Scenario
from pytest_mlperf.loadgen.settings import conf_model

DATACENTER = "datacenter"
EDGE = "edge"

#: Per system type: groups of scenarios, one of each group required (the checker's
#: ``required-scenarios-<type>``, plus "(one of) Interactive or Server" for datacenter LLMs).
REQUIRED_SCENARIOS: Mapping[str, tuple[tuple[Scenario, ...], ...]] = {
    DATACENTER: ((Scenario.OFFLINE,), (Scenario.SERVER, Scenario.INTERACTIVE)),
    EDGE: ((Scenario.OFFLINE,), (Scenario.SINGLE_STREAM,)),
}
#: Per system type: every scenario a result may be filed under.
ALLOWED_SCENARIOS: Mapping[str, frozenset[Scenario]] = {
    DATACENTER: frozenset({Scenario.OFFLINE, Scenario.SERVER, Scenario.INTERACTIVE}),
    EDGE: frozenset({Scenario.OFFLINE, Scenario.SINGLE_STREAM}),
}

#: The rules ``--mlperf-profile=official`` refuses before any engine starts (unless
#: ``--mlperf-allow-nonconformant``); the quick profile only labels the run.
REFUSED_BY_OFFICIAL = frozenset({"prefix_caching", "sampling", "generation", "subset",
                                 "performance_sample_count"})

#: Request fields that change greedy decoding, and their neutral values.
GREEDY_FIELDS: Mapping[str, float] = {"temperature": 0.0, "repetition_penalty": 1.0,
                                      "presence_penalty": 0.0, "frequency_penalty": 0.0}


@dataclass(frozen=True)
class BenchmarkRules:
    """What the published rules fix for one benchmark beyond mlperf.conf."""

    benchmark: str
    system_type: str
    #: records of the data set; an accuracy run covers every one
    dataset_samples: int
    #: the reference SUT's generation (None: not checked here)
    max_new_tokens: int | None = None
    min_new_tokens: int = 1
    #: compliance tests a submission of this benchmark needs
    compliance: tuple[str, ...] = ()
    #: sha256 of the published data set file(s)
    dataset_sha256: tuple[str, ...] = ()

    def conf(self, scenario: Scenario, key: str) -> float | None:
        """``key`` of loadgen's built-in mlperf.conf for this benchmark in ``scenario``."""
        return conf_value(conf_model(self.benchmark, scenario), scenario.loadgen_name, key)

    def performance_sample_count(self) -> int:
        value = self.conf(Scenario.OFFLINE, "performance_sample_count_override")
        return int(value) if value else self.dataset_samples

    def min_duration_ms(self, scenario: Scenario) -> int:
        return int(self.conf(scenario, "min_duration") or 0)

    def min_query_count(self, scenario: Scenario) -> int:
        return int(self.conf(scenario, "min_query_count") or 0)

    def sample_concatenate_permutation(self) -> bool:
        return bool(self.conf(Scenario.OFFLINE, "sample_concatenate_permutation"))

    def use_token_latencies(self) -> bool:
        return bool(self.conf(Scenario.OFFLINE, "use_token_latencies"))


_LLAMA31_8B_SHA = "6d066a21bd615909466885d53b664b73c5aabc32d60c1cbd03f4293de6430026"
_LLAMA31_8B_EDGE_SHA = "2d1a21eadd8ef7547d2f5fba939a9e1886a22ee926fe3781cb8934d3a01445db"

#: The benchmarks this plugin knows the rules of (v6.x; data set sizes and TEST06 from the
#: submission checker's constants, generation from the reference SUTs).
BENCHMARKS: Mapping[str, BenchmarkRules] = {
    rules.benchmark: rules for rules in (
        BenchmarkRules("llama3.1-8b", DATACENTER, 13368, 128, compliance=("TEST06",),
                       dataset_sha256=(_LLAMA31_8B_SHA,)),
        BenchmarkRules("llama3.1-8b-edge", EDGE, 5000, 128,
                       dataset_sha256=(_LLAMA31_8B_EDGE_SHA,)),
        BenchmarkRules("llama2-70b", DATACENTER, 24576, 1024, compliance=("TEST06",)),
        BenchmarkRules("llama3.1-405b", DATACENTER, 8313),
        BenchmarkRules("mixtral-8x7b", DATACENTER, 15000),
        BenchmarkRules("deepseek-r1", DATACENTER, 4388, compliance=("TEST06",)),
    )
}


def rules_for(benchmark: str) -> BenchmarkRules | None:
    """The rules of ``benchmark`` (``llama2-70b-99.9`` -> ``llama2-70b``), None if unknown."""
    if benchmark in BENCHMARKS:
        return BENCHMARKS[benchmark]
    for suffix in ("-99.9", "-99", "-interactive"):
        if benchmark.endswith(suffix):
            return rules_for(benchmark[: -len(suffix)])
    return None


def system_type_of(benchmark: str) -> str | None:
    """``"datacenter"`` or ``"edge"``: the only system type ``benchmark`` may be filed under
    (None for a benchmark these rules do not know)."""
    rules = rules_for(benchmark)
    return rules.system_type if rules else None


def missing_scenarios(system_type: str, scenarios: Sequence[Scenario | str]) -> list[str]:
    """What ``scenarios`` of one benchmark lack for ``system_type`` (``["Server or
    Interactive"]``), empty when the set is complete."""
    have = {Scenario.parse(s) for s in scenarios}
    return [" or ".join(s.value for s in group) for group in REQUIRED_SCENARIOS[system_type]
            if not have.intersection(group)]


@functools.cache
def _conf_lines() -> dict[tuple[str, str, str], float]:
    from pytest_mlperf.loadgen.mlperf_conf import builtin_mlperf_conf

    values: dict[tuple[str, str, str], float] = {}
    for raw in builtin_mlperf_conf().splitlines():
        line = raw.split("#", 1)[0].strip()
        name, sep, value = line.partition("=")
        parts = name.strip().rsplit(".", 2)
        if not sep or len(parts) != 3:
            continue
        try:
            values[(parts[0], parts[1], parts[2])] = float(value.strip())
        except ValueError:
            continue
    return values


def conf_value(model: str, loadgen_scenario: str, key: str) -> float | None:
    """A value of loadgen's built-in mlperf.conf, with loadgen's precedence
    ``model.scenario.key > *.scenario.key > model.*.key > *.*.key`` (None: not set)."""
    lines = _conf_lines()
    for m, s in ((model, loadgen_scenario), ("*", loadgen_scenario), (model, "*"), ("*", "*")):
        if (m, s, key) in lines:
            return lines[(m, s, key)]
    return None


@dataclass(frozen=True)
class Breach:
    """One rule a run breaks: ``rule`` names it (see :data:`REFUSED_BY_OFFICIAL`)."""

    rule: str
    message: str


@dataclass(frozen=True)
class RunFacts:
    """What decides whether one run is an MLPerf one, known before it starts."""

    benchmark: str
    scenario: Scenario
    mode: Mode
    #: the effective loadgen TestSettings (name -> value)
    settings: Mapping[str, object]
    #: records the QSL holds, and the data set file's sha256
    samples: int
    dataset_sha256: str = ""
    max_new_tokens: int | None = None
    min_new_tokens: int | None = None
    #: request fields beyond the generation config (a served backend's engine arguments)
    request_fields: Mapping[str, object] | None = None
    #: True / False where the engine's cross-query caching is known, None where not (yet)
    prefix_caching: bool | None = None
    #: compliance tests the session runs after each performance run
    compliance: tuple[str, ...] = ()


def check_run(facts: RunFacts) -> list[Breach]:
    """Every rule of its benchmark that the run ``facts`` describe breaks (empty: the run is
    an MLPerf one). A benchmark these rules do not know is one breach."""
    rules = rules_for(facts.benchmark)
    if rules is None:
        return [Breach("benchmark", f"'{facts.benchmark}' is not an MLPerf benchmark these rules "
                       f"know ({', '.join(BENCHMARKS)})")]
    out: list[Breach] = []
    out += _scenario(rules, facts)
    out += _engine(rules, facts)
    out += _data(rules, facts)
    if facts.mode is Mode.PERFORMANCE:
        out += _performance(rules, facts)
    return out


def _scenario(rules: BenchmarkRules, facts: RunFacts) -> list[Breach]:
    if facts.scenario in ALLOWED_SCENARIOS[rules.system_type]:
        return []
    allowed = ", ".join(s.value for s in Scenario if s in ALLOWED_SCENARIOS[rules.system_type])
    return [Breach("scenario", f"{facts.scenario.value} is not a scenario of {rules.benchmark} "
                   f"({rules.system_type}: {allowed})")]


def _engine(rules: BenchmarkRules, facts: RunFacts) -> list[Breach]:
    out = []
    if facts.prefix_caching:
        out.append(Breach("prefix_caching", "prefix caching is on: MLPerf forbids caching across "
                          "queries (vLLM: enable_prefix_caching=false, --no-enable-prefix-caching)"))
    fields = dict(facts.request_fields or {})
    for name, neutral in GREEDY_FIELDS.items():
        value = fields.get(name)
        if value is not None and value != neutral:
            out.append(Breach("sampling", f"{name}={value}: MLPerf requires greedy decoding "
                              f"({name} {neutral:g})"))
    wanted = (("max_new_tokens", rules.max_new_tokens, facts.max_new_tokens, ("max_tokens",)),
              ("min_new_tokens", rules.min_new_tokens, facts.min_new_tokens, ("min_tokens",)))
    for name, rule, value, aliases in wanted:
        for alias in aliases:
            if fields.get(alias) is not None:
                value = fields[alias]  # type: ignore[assignment]
        if rule is not None and value is not None and value != rule:
            out.append(Breach("generation", f"{name} {value}: the reference SUT generates with "
                              f"{name} {rule}"))
    return out


def _data(rules: BenchmarkRules, facts: RunFacts) -> list[Breach]:
    out = []
    if facts.samples < rules.dataset_samples:
        what = "accuracy" if facts.mode is Mode.ACCURACY else "performance"
        out.append(Breach("subset", f"{facts.samples:,} of {rules.dataset_samples:,} samples: "
                          f"not an MLPerf {what} result"))
    elif rules.dataset_sha256 and facts.dataset_sha256 and \
            facts.dataset_sha256 not in rules.dataset_sha256:
        out.append(Breach("dataset", f"the data set is not the published one of {rules.benchmark} "
                          f"(sha256 {facts.dataset_sha256[:12]}...)"))
    return out


def _performance(rules: BenchmarkRules, facts: RunFacts) -> list[Breach]:
    s, scenario, out = facts.settings, facts.scenario, []
    count = _int(s.get("performance_sample_count_override"))
    if count is not None and 0 < count < rules.performance_sample_count():
        out.append(Breach("performance_sample_count", f"performance_sample_count {count:,} is "
                          f"below {rules.benchmark}'s {rules.performance_sample_count():,}"))
    duration = _int(s.get("min_duration_ms"))
    if duration is not None and duration < rules.min_duration_ms(scenario):
        out.append(Breach("min_duration", f"min_duration {duration / 1000:g} s is below "
                          f"mlperf.conf's {rules.min_duration_ms(scenario) / 1000:g} s"))
    queries = _int(s.get("min_query_count"))
    if queries is not None and queries < rules.min_query_count(scenario):
        out.append(Breach("min_query_count", f"min_query_count {queries:,} is below "
                          f"mlperf.conf's {rules.min_query_count(scenario):,}"))
    concat = s.get("sample_concatenate_permutation")
    if concat is not None and bool(concat) != rules.sample_concatenate_permutation():
        out.append(Breach("sample_concatenate_permutation",
                          f"sample_concatenate_permutation is {int(bool(concat))} "
                          f"(mlperf.conf: {int(rules.sample_concatenate_permutation())})"))
    tokens = s.get("use_token_latencies")
    if tokens is not None and bool(tokens) != rules.use_token_latencies():
        out.append(Breach("use_token_latencies", f"use_token_latencies is {int(bool(tokens))} "
                          f"(mlperf.conf: {int(rules.use_token_latencies())})"))
    out += _limits(rules, facts)
    for test in rules.compliance:
        if test not in facts.compliance:
            out.append(Breach("compliance", f"{test} not run (required for {rules.benchmark}: "
                              f"--mlperf-compliance={test})"))
    return out


def _limits(rules: BenchmarkRules, facts: RunFacts) -> list[Breach]:
    """Latency limits and percentiles no looser than mlperf.conf's (Server, Interactive,
    SingleStream)."""
    out = []
    if facts.scenario.loadgen_name == "Server":
        for key, setting in (("ttft_latency", "ttft_latency"), ("tpot_latency", "tpot_latency"),
                             ("target_latency", "server_target_latency_ns")):
            rule = rules.conf(facts.scenario, key)
            value = facts.settings.get(setting)
            if rule and isinstance(value, (int, float)) and (not value or value / 1e6 > rule):
                out.append(Breach("latency_limit", f"{setting} {value / 1e6:g} ms is looser "
                                  f"than mlperf.conf's {rule:g} ms"))
    setting = {"Server": "server_target_latency_percentile",
               "SingleStream": "single_stream_target_latency_percentile"}.get(facts.scenario.loadgen_name)
    rule = rules.conf(facts.scenario, "target_latency_percentile")
    value = facts.settings.get(setting) if setting else None
    if rule and isinstance(value, (int, float)) and value * 100 < rule - 1e-9:
        out.append(Breach("latency_limit", f"{setting} {value:g} is below mlperf.conf's "
                          f"{rule / 100:g}"))
    return out


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
