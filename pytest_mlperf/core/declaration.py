"""What a benchmark module declares, as plain data: :class:`BenchmarkSpec` and the
:class:`Thresholds` of each scenario. ``spec.py`` (the pytest surface) makes them from the
``mlperf`` marker; the gate, the verdict and the run read them."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_mlperf.core.vocabulary import Scenario


@dataclass(frozen=True)
class Thresholds:
    """Gates beyond loadgen's validity for one scenario. None: not checked."""

    min_tokens_per_second: float | None = None
    min_samples_per_second: float | None = None
    #: on loadgen's p99 time to first token / time per output token (streaming scenarios)
    max_ttft_ms: float | None = None
    max_tpot_ms: float | None = None

    #: gates that only streaming scenarios can measure
    STREAMING_ONLY = ("max_ttft_ms", "max_tpot_ms")

    def applies_to(self, name: str, scenario: Scenario) -> bool:
        return scenario.streaming or name not in self.STREAMING_ONLY

    def merged(self, over: Mapping[str, float]) -> Thresholds:
        return dataclasses.replace(self, **over)

    def as_dict(self) -> dict[str, float]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


THRESHOLD_NAMES = tuple(f.name for f in dataclasses.fields(Thresholds))


@dataclass(frozen=True)
class BenchmarkSpec:
    benchmark: str
    scenarios: tuple[Scenario, ...]
    rouge_ratio: float | None = None
    baseline: str | Mapping[str, float] | None = None
    #: the gates of every declared scenario (top-level values, then per-scenario ones)
    thresholds: Mapping[Scenario, Thresholds] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)
    engine_args: Mapping[str, Any] = field(default_factory=dict)

    def supports(self, scenario: Scenario) -> bool:
        return scenario in self.scenarios

    def thresholds_for(self, scenario: Scenario) -> Thresholds:
        return self.thresholds.get(scenario, Thresholds())
