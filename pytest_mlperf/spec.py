"""The ``mlperf`` marker -> :class:`BenchmarkSpec`: what a benchmark module declares.

::

    pytestmark = pytest.mark.mlperf(
        benchmark="llama3.1-8b",                 # mlperf.conf model / submission benchmark name
        scenarios=("Offline", "Server", "Interactive"),
        rouge_ratio=None,                        # None: the target's own (0.99; 0.999 for
                                                 # llama2-70b-99.9); a number overrides it
        baseline=None,                           # None: chosen by the data set (the embedded
                                                 # model's per-sample scores on the embedded set,
                                                 # else the MLCommons targets); a target name;
                                                 # or {"rouge1": ..., ..., "samples": N}
        min_tokens_per_second=None,              # gates beyond loadgen's validity, for every
        max_ttft_ms=None, max_tpot_ms=None,      # declared scenario they apply to (p99 TTFT and
                                                 # TPOT: the streaming ones)
        thresholds={"Server": {"max_ttft_ms": 1500}},  # per scenario; wins over the above
        settings={"server_target_qps": 2.0},     # loadgen TestSettings overrides
        engine_args={"max_num_seqs": 64},        # passed to the backend's engine
    )

The marker is validated once, at collection: a mistake is a ``pytest.UsageError`` naming the
test and the argument, before any engine starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from pytest_mlperf.core.declaration import THRESHOLD_NAMES, BenchmarkSpec, Thresholds
from pytest_mlperf.core.vocabulary import Scenario

__all__ = ["MARKER", "MARKER_HELP", "THRESHOLD_NAMES", "BenchmarkSpec", "SpecError", "Thresholds",
           "spec_from_marker"]

MARKER = "mlperf"
MARKER_HELP = (
    "mlperf(benchmark, scenarios=('Offline',), rouge_ratio=None, baseline=None, "
    "min_tokens_per_second=None, min_samples_per_second=None, max_ttft_ms=None, "
    "max_tpot_ms=None, thresholds=None, settings=None, engine_args=None): "
    "declare an MLPerf Inference benchmark test"
)


_KNOWN = {
    "benchmark", "scenarios", "rouge_ratio", "baseline", "thresholds", "settings",
    "engine_args", *THRESHOLD_NAMES,
}


class SpecError(ValueError):
    """A marker that cannot be honoured; the message names the test and the argument."""


def spec_from_marker(marker: pytest.Mark, where: str) -> BenchmarkSpec:
    """Parse and validate the marker; :class:`SpecError` names ``where`` and the argument."""
    kwargs = dict(marker.kwargs)
    if marker.args:
        if len(marker.args) > 1 or "benchmark" in kwargs:
            raise SpecError(f"{where}: the mlperf marker takes one positional argument, the benchmark")
        kwargs["benchmark"] = marker.args[0]
    unknown = set(kwargs) - _KNOWN
    if unknown:
        raise SpecError(
            f"{where}: unknown mlperf marker argument(s) {sorted(unknown)}; known: {sorted(_KNOWN)}"
        )
    benchmark = kwargs.get("benchmark")
    if not isinstance(benchmark, str) or not benchmark:
        raise SpecError(f"{where}: the mlperf marker needs benchmark='llama3.1-8b' (or another mlperf.conf model)")
    scenarios = _scenarios(kwargs.get("scenarios", ("Offline",)), where)
    _known_benchmark(benchmark, scenarios, where)
    ratio = kwargs.get("rouge_ratio")
    if ratio is not None and (isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 1):
        raise SpecError(f"{where}: mlperf marker rouge_ratio must be a number in (0, 1], got {ratio!r}")
    return BenchmarkSpec(
        benchmark=benchmark,
        scenarios=scenarios,
        rouge_ratio=None if ratio is None else float(ratio),
        baseline=_baseline(kwargs.get("baseline"), where),
        thresholds=_thresholds(kwargs, scenarios, where),
        settings=_settings(kwargs.get("settings"), scenarios, where),
        engine_args=_engine_args(kwargs.get("engine_args"), where),
    )


def _scenarios(raw: Any, where: str) -> tuple[Scenario, ...]:
    if isinstance(raw, (str, Scenario)):
        raw = (raw,)
    if not isinstance(raw, (list, tuple, set, frozenset)) or not raw:
        raise SpecError(f"{where}: mlperf marker scenarios must be a non-empty list, got {raw!r}")
    out = []
    for s in raw:
        try:
            out.append(Scenario.parse(s))
        except ValueError:
            raise SpecError(
                f"{where}: mlperf marker scenario {s!r} is not one of " + ", ".join(x.value for x in Scenario)
            ) from None
    return tuple(dict.fromkeys(out))


def _positive(name: str, value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise SpecError(f"{where}: mlperf marker {name} must be a positive number, got {value!r}")
    return float(value)


def _thresholds(kwargs: Mapping[str, Any], scenarios: tuple[Scenario, ...], where: str) -> dict[Scenario, Thresholds]:
    top = {n: _positive(n, kwargs[n], where) for n in THRESHOLD_NAMES if kwargs.get(n) is not None}
    for name in top:
        if not any(Thresholds().applies_to(name, s) for s in scenarios):
            raise SpecError(
                f"{where}: mlperf marker {name} cannot apply: none of the declared scenarios "
                f"({', '.join(s.value for s in scenarios)}) measures it (p99 TTFT/TPOT need "
                "Server, Interactive or SingleStream); declare it for those scenarios in "
                "thresholds={...}"
            )
    raw = kwargs.get("thresholds") or {}
    if not isinstance(raw, Mapping):
        raise SpecError(f"{where}: mlperf marker thresholds must be a mapping scenario -> {{gate: value}}, got {raw!r}")
    per: dict[Scenario, dict[str, float]] = {}
    for key, gates in raw.items():
        try:
            scenario = Scenario.parse(key)
        except ValueError:
            raise SpecError(
                f"{where}: mlperf marker thresholds: {key!r} is not a scenario (one of "
                + ", ".join(x.value for x in Scenario) + ")"
            ) from None
        if scenario not in scenarios:
            raise SpecError(
                f"{where}: mlperf marker thresholds: {scenario.value} is not among the declared "
                f"scenarios ({', '.join(s.value for s in scenarios)}), so its gates would never apply"
            )
        if not isinstance(gates, Mapping):
            raise SpecError(f"{where}: mlperf marker thresholds[{key!r}] must be a mapping of gates, got {gates!r}")
        for name, value in gates.items():
            if name not in THRESHOLD_NAMES:
                raise SpecError(
                    f"{where}: mlperf marker thresholds[{key!r}]: unknown gate {name!r}; known: "
                    + ", ".join(THRESHOLD_NAMES)
                )
            if not Thresholds().applies_to(name, scenario):
                raise SpecError(
                    f"{where}: mlperf marker thresholds[{key!r}]: {name} cannot apply to "
                    f"{scenario.value} (loadgen measures no TTFT/TPOT there)"
                )
            per.setdefault(scenario, {})[name] = _positive(f"thresholds[{key!r}][{name!r}]", value, where)
    out = {}
    for scenario in scenarios:
        applicable = {n: v for n, v in top.items() if Thresholds().applies_to(n, scenario)}
        out[scenario] = Thresholds().merged({**applicable, **per.get(scenario, {})})
    return out


def _baseline(raw: Any, where: str) -> str | Mapping[str, float] | None:
    if raw is None:
        return None
    from pytest_mlperf.accuracy.baselines import BASELINE_KEYS
    from pytest_mlperf.accuracy.targets import TARGETS

    if isinstance(raw, str):
        if raw not in TARGETS:
            raise SpecError(f"{where}: mlperf marker baseline={raw!r} is not one of {sorted(TARGETS)}")
        return raw
    if not isinstance(raw, Mapping):
        raise SpecError(
            f"{where}: mlperf marker baseline must be a target name or a mapping of figures, got {raw!r}"
        )
    unknown = sorted(set(raw) - set(BASELINE_KEYS))
    if unknown:
        raise SpecError(
            f"{where}: mlperf marker baseline: unknown key(s) {unknown}; known: {', '.join(BASELINE_KEYS)}"
        )
    for key, value in raw.items():
        _positive(f"baseline[{key!r}]", value, where)
    if not set(raw) - {"samples"}:
        raise SpecError(f"{where}: mlperf marker baseline declares no figure; give at least one of "
                        + ", ".join(k for k in BASELINE_KEYS if k != "samples"))
    return dict(raw)


def _settings(raw: Any, scenarios: tuple[Scenario, ...], where: str) -> dict[str, Any]:
    if not raw:
        return {}
    from pytest_mlperf.loadgen.ranges import unread_problem
    from pytest_mlperf.loadgen.settings import SettingsError, check_overrides

    try:
        checked = check_overrides(raw, f"{where}: mlperf marker settings")
    except SettingsError as exc:
        raise SpecError(str(exc)) from None
    problem = unread_problem(checked, tuple(s.value for s in scenarios), f"{where}: mlperf marker settings")
    if problem:
        raise SpecError(problem)
    return checked


def _known_benchmark(benchmark: str, scenarios: tuple[Scenario, ...], where: str) -> None:
    """The benchmark must be a model of loadgen's mlperf.conf in every declared scenario, or
    loadgen runs it on defaults and calls it VALID."""
    import difflib

    from pytest_mlperf.loadgen.mlperf_conf import known_models
    from pytest_mlperf.loadgen.settings import conf_model

    models = known_models()
    if not models:
        return
    for scenario in scenarios:
        key = conf_model(benchmark, scenario)
        if key not in models:
            names = sorted({m.replace("_", ".") for m in models if not m.endswith("-interactive")})
            close = difflib.get_close_matches(benchmark, names, n=3)
            hint = f"; did you mean {' or '.join(close)}?" if close else f"; known: {', '.join(names)}"
            what = "" if key == benchmark.replace(".", "_") else f" (for {scenario.value}: '{key}')"
            raise SpecError(f"{where}: mlperf marker benchmark='{benchmark}' is not a model of "
                            f"loadgen's mlperf.conf{what}, so loadgen would run it on default "
                            f"settings{hint}")


def _engine_args(raw: Any, where: str) -> dict[str, Any]:
    if not raw:
        return {}
    if not isinstance(raw, Mapping) or not all(isinstance(k, str) and k for k in raw):
        raise SpecError(f"{where}: mlperf marker engine_args must be a mapping of argument names to values, got {raw!r}")
    return dict(raw)
