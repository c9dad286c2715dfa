"""``--mlperf-threshold`` (ini ``mlperf_threshold``): the marker's gates from the command line.

::

    [BENCHMARK:][SCENARIO:]GATE       e.g.  llama3.1-8b:Server:ttft_p99_ms<=2000
                                            Server:tokens_per_second>=5000
                                            max_tpot_ms=80

GATE is a figure with its direction, or the marker's name for the same gate
(:class:`~pytest_mlperf.spec.Thresholds`):

====================================  =========================
figure                                marker name
====================================  =========================
``tokens_per_second>=V``              ``min_tokens_per_second=V``
``samples_per_second>=V``             ``min_samples_per_second=V``
``ttft_p99_ms<=V`` (p99 TTFT)         ``max_ttft_ms=V``
``tpot_p99_ms<=V`` (p99 TPOT)         ``max_tpot_ms=V``
====================================  =========================

The most specific gate wins, in loadgen's own order for conf files: ``benchmark:scenario`` >
``*:scenario`` > ``benchmark:*`` > ``*:*``. At the same level the command line (or ini) wins
over the marker, whose top-level gates are ``benchmark:*`` and whose ``thresholds={Scenario:
{...}}`` are ``benchmark:scenario``; among rules of one level the last one wins. A gate that
only streaming scenarios measure (TTFT, TPOT) applies to those only.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_mlperf.core.declaration import THRESHOLD_NAMES, BenchmarkSpec, Thresholds
from pytest_mlperf.core.vocabulary import Scenario

#: figure -> (the comparison it takes, the Thresholds field it sets)
FIGURE_GATES: Mapping[str, tuple[str, str]] = {
    "tokens_per_second": (">=", "min_tokens_per_second"),
    "samples_per_second": (">=", "min_samples_per_second"),
    "ttft_p99_ms": ("<=", "max_ttft_ms"),
    "tpot_p99_ms": ("<=", "max_tpot_ms"),
}
_GATE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|=)\s*(\S+)\s*$")
SYNTAX = ("[BENCHMARK:][SCENARIO:]GATE with GATE one of "
          + ", ".join(f"{f}{op}V" for f, (op, _) in FIGURE_GATES.items())
          + " (or " + ", ".join(f"{n}=V" for n in THRESHOLD_NAMES) + ")")


@dataclass(frozen=True)
class ThresholdRule:
    """One ``--mlperf-threshold`` expression."""

    benchmark: str | None  # None: every benchmark
    scenario: Scenario | None  # None: every scenario
    gate: str  # a Thresholds field
    value: float
    text: str

    @property
    def level(self) -> int:
        """0 ``*:*``, 1 ``benchmark:*``, 2 ``*:scenario``, 3 ``benchmark:scenario``."""
        return (2 if self.scenario is not None else 0) + (1 if self.benchmark is not None else 0)

    def matches(self, benchmark: str, scenario: Scenario) -> bool:
        return (self.benchmark in (None, benchmark)) and (self.scenario in (None, scenario))

    def __str__(self) -> str:
        return self.text


def parse_rule(text: str) -> ThresholdRule:
    """``llama3.1-8b:Server:ttft_p99_ms<=2000`` -> :class:`ThresholdRule`; ``ValueError`` with
    what is wrong and the syntax otherwise."""
    parts = [p.strip() for p in text.strip().split(":")]
    if not 1 <= len(parts) <= 3 or not parts[-1]:
        raise ValueError(f"expected {SYNTAX}")
    *where, gate_text = parts
    benchmark: str | None = None
    scenario: Scenario | None = None
    if len(where) == 2:
        benchmark = None if where[0] in ("*", "") else where[0]
        scenario = _scenario(where[1])
    elif len(where) == 1:
        # One qualifier: a scenario when it names one, else a benchmark.
        try:
            scenario = _scenario(where[0])
        except ValueError:
            benchmark = where[0] or None
    m = _GATE.match(gate_text)
    if m is None:
        raise ValueError(f"{gate_text!r} is not a gate; expected {SYNTAX}")
    name, op, raw = m.groups()
    if name in FIGURE_GATES:
        want, field = FIGURE_GATES[name]
        if op != want:
            kind = "floor" if want == ">=" else "ceiling"
            raise ValueError(f"{name} is a {kind}: write {name}{want}{raw}")
    elif name in THRESHOLD_NAMES:
        if op != "=":
            raise ValueError(f"{name} is a marker gate name: write {name}={raw}")
        field = name
    else:
        raise ValueError(f"unknown gate {name!r}; expected {SYNTAX}")
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"{name}: the bound {raw!r} is not a positive number")
    if scenario is not None and not Thresholds().applies_to(field, scenario):
        raise ValueError(f"{name} cannot apply to {scenario.value} (loadgen measures no TTFT/TPOT there)")
    return ThresholdRule(benchmark=benchmark, scenario=scenario, gate=field, value=value,
                         text=text.strip())


def _scenario(text: str) -> Scenario | None:
    if text in ("*", ""):
        return None
    return Scenario.parse(text)


def _marker_levels(kwargs: Mapping[str, Any]) -> tuple[dict[str, float], dict[Scenario, dict[str, float]]]:
    """The marker's gates by level: top-level (``benchmark:*``) and per scenario. The marker
    was validated at collection already (``spec_from_marker``)."""
    top = {n: float(kwargs[n]) for n in THRESHOLD_NAMES if kwargs.get(n) is not None}
    per: dict[Scenario, dict[str, float]] = {}
    for key, gates in (kwargs.get("thresholds") or {}).items():
        per[Scenario.parse(key)] = {n: float(v) for n, v in gates.items()}
    return top, per


def merged(spec: BenchmarkSpec, marker_kwargs: Mapping[str, Any],
           rules: Sequence[ThresholdRule]) -> dict[Scenario, Thresholds]:
    """Every declared scenario's gates: the marker's and the rules', most specific winning."""
    top, per = _marker_levels(marker_kwargs)
    out: dict[Scenario, Thresholds] = {}
    for scenario in spec.scenarios:
        # (level, source, order) -> the highest wins; source 0 marker, 1 command line / ini
        chosen: dict[str, tuple[tuple[int, int, int], float]] = {}

        offers = [(gate, value, (1, 0, 0)) for gate, value in top.items()]
        offers += [(gate, value, (3, 0, 0)) for gate, value in per.get(scenario, {}).items()]
        offers += [(rule.gate, rule.value, (rule.level, 1, order))
                   for order, rule in enumerate(rules) if rule.matches(spec.benchmark, scenario)]
        for gate, value, rank in offers:
            if Thresholds().applies_to(gate, scenario) and (gate not in chosen or rank >= chosen[gate][0]):
                chosen[gate] = (rank, value)
        out[scenario] = Thresholds(**{gate: value for gate, (_, value) in chosen.items()})
    return out


def apply(spec: BenchmarkSpec, marker_kwargs: Mapping[str, Any],
          rules: Sequence[ThresholdRule]) -> BenchmarkSpec:
    """``spec`` with the rules' gates merged into its per-scenario thresholds."""
    if not rules:
        return spec
    return dataclasses.replace(spec, thresholds=merged(spec, marker_kwargs, rules))


def unmatched(rules: Iterable[ThresholdRule], benchmarks: Iterable[str]) -> list[ThresholdRule]:
    """Rules naming a benchmark no collected test declares (a typo would gate nothing)."""
    known = set(benchmarks)
    return [r for r in rules if r.benchmark is not None and r.benchmark not in known]
