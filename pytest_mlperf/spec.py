"""The ``mlperf`` marker -> :class:`BenchmarkSpec`: what a benchmark module declares.

::

    pytestmark = pytest.mark.mlperf(
        benchmark="llama3.1-8b",                 # mlperf.conf model / submission benchmark name
        scenarios=("Offline", "Server", "Interactive"),
        rouge_ratio=0.99,                        # accuracy gate: each ROUGE >= ratio x baseline
        baseline=None,                           # None: the official targets (or the embedded
                                                 # model's own scores on the embedded set);
                                                 # a TARGETS name; or {"rouge1": ..., ...}
        min_tokens_per_second=None,              # performance gate beyond loadgen's validity
        max_ttft_ms=None, max_tpot_ms=None,      # latency gates beyond loadgen's limits
        settings={"server_target_qps": 2.0},     # loadgen TestSettings overrides
        engine_args={"max_num_seqs": 64},        # passed to the backend's engine
    )
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_mlperf.loadgen.settings import Scenario

MARKER = "mlperf"
MARKER_HELP = (
    "mlperf(benchmark, scenarios, rouge_ratio=0.99, baseline=None, min_tokens_per_second=None, "
    "max_ttft_ms=None, max_tpot_ms=None, settings=None, engine_args=None): "
    "declare an MLPerf Inference benchmark test"
)

_KNOWN = {
    "benchmark", "scenarios", "rouge_ratio", "baseline", "min_tokens_per_second",
    "max_ttft_ms", "max_tpot_ms", "settings", "engine_args",
}


class SpecError(ValueError):
    """A marker that cannot be honoured; the message names the test and the argument."""


@dataclass(frozen=True)
class BenchmarkSpec:
    benchmark: str
    scenarios: tuple[Scenario, ...]
    rouge_ratio: float = 0.99
    baseline: str | Mapping[str, float] | None = None
    min_tokens_per_second: float | None = None
    max_ttft_ms: float | None = None
    max_tpot_ms: float | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    engine_args: Mapping[str, Any] = field(default_factory=dict)

    def supports(self, scenario: Scenario) -> bool:
        return scenario in self.scenarios


def spec_from_marker(marker: pytest.Mark, where: str) -> BenchmarkSpec:
    kwargs = dict(marker.kwargs)
    if marker.args:
        kwargs.setdefault("benchmark", marker.args[0])
    unknown = set(kwargs) - _KNOWN
    if unknown:
        raise SpecError(f"{where}: unknown mlperf marker argument(s) {sorted(unknown)}; known: {sorted(_KNOWN)}")
    benchmark = kwargs.pop("benchmark", None)
    if not isinstance(benchmark, str) or not benchmark:
        raise SpecError(f"{where}: the mlperf marker needs benchmark='llama3.1-8b' (or another mlperf.conf model)")
    raw_scenarios = kwargs.pop("scenarios", ("Offline",))
    if isinstance(raw_scenarios, str):
        raw_scenarios = (raw_scenarios,)
    scenarios = []
    for s in raw_scenarios:
        try:
            scenarios.append(s if isinstance(s, Scenario) else Scenario(s))
        except ValueError:
            raise SpecError(
                f"{where}: mlperf marker scenario {s!r} is not one of "
                + ", ".join(x.value for x in Scenario)
            ) from None
    ratio = kwargs.get("rouge_ratio", 0.99)
    if not isinstance(ratio, (int, float)) or not 0 < ratio <= 1:
        raise SpecError(f"{where}: mlperf marker rouge_ratio must be in (0, 1], got {ratio!r}")
    for name in ("min_tokens_per_second", "max_ttft_ms", "max_tpot_ms"):
        value = kwargs.get(name)
        if value is not None and (not isinstance(value, (int, float)) or value <= 0):
            raise SpecError(f"{where}: mlperf marker {name} must be a positive number, got {value!r}")
    return BenchmarkSpec(
        benchmark=benchmark,
        scenarios=tuple(scenarios),
        rouge_ratio=float(ratio),
        baseline=kwargs.get("baseline"),
        min_tokens_per_second=kwargs.get("min_tokens_per_second"),
        max_ttft_ms=kwargs.get("max_ttft_ms"),
        max_tpot_ms=kwargs.get("max_tpot_ms"),
        settings=dict(kwargs.get("settings") or {}),
        engine_args=dict(kwargs.get("engine_args") or {}),
    )
