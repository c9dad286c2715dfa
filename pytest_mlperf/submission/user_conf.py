"""A run's settings beyond loadgen's mlperf.conf, written as the ``user.conf`` that makes them.

The run's TestSettings (mlperf.conf < run profile < ``--mlperf-user-conf`` < marker <
``--mlperf-setting``) are compared field by field with mlperf.conf's alone; every field that
differs becomes a ``model.scenario.key = value`` line in loadgen's own units (``min_duration``
in ms, ``target_latency`` in ms, ``target_latency_percentile`` in percent). A field that
user.conf cannot set is written as a comment, so the file says everything the run changed and
loadgen reading it back reproduces every field it can.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_mlperf.core.vocabulary import Mode

#: TestSettings field -> (user.conf key, conf value per field unit), for every loadgen scenario
_COMMON: dict[str, tuple[str, float]] = {
    "min_duration_ms": ("min_duration", 1),
    "max_duration_ms": ("max_duration", 1),
    "min_query_count": ("min_query_count", 1),
    "max_query_count": ("max_query_count", 1),
    "performance_sample_count_override": ("performance_sample_count_override", 1),
    "sample_concatenate_permutation": ("sample_concatenate_permutation", 1),
    "use_token_latencies": ("use_token_latencies", 1),
    "accuracy_log_sampling_target": ("accuracy_log_sampling_target", 1),
}
#: ... and those whose user.conf key means a different field in each scenario
_BY_SCENARIO: dict[str, dict[str, tuple[str, float]]] = {
    "Offline": {"offline_expected_qps": ("target_qps", 1)},
    "Server": {
        "server_target_qps": ("target_qps", 1),
        "server_target_latency_ns": ("target_latency", 1e-6),
        "server_target_latency_percentile": ("target_latency_percentile", 100),
        "server_coalesce_queries": ("coalesce_queries", 1),
        "server_max_async_queries": ("max_async_queries", 1),
    },
    "SingleStream": {
        "single_stream_expected_latency_ns": ("target_latency", 1e-6),
        "single_stream_target_latency_percentile": ("target_latency_percentile", 100),
    },
}
#: fields a scenario never reads (another scenario's knobs): not worth a line
_OTHER_SCENARIOS = ("offline_", "server_", "single_stream_", "multi_stream_")
_SKIP = frozenset({"FromConfig", "scenario", "mode"})


def snapshot(settings: Any) -> dict[str, Any]:
    """The plain values of a loadgen ``TestSettings``."""
    out = {}
    for name in dir(settings):
        if name.startswith("_") or name in _SKIP:
            continue
        value = getattr(settings, name)
        if isinstance(value, (bool, int, float, str)):
            out[name] = value
    return out


def settings_diff(plan: Any, mode: Mode) -> dict[str, Any]:
    """The TestSettings fields of ``plan``'s run in ``mode`` that differ from mlperf.conf's."""
    from pytest_mlperf.loadgen.settings import conf_values

    base = conf_values(plan.model_key, plan.scenario.loadgen_name, {}, None)
    final = snapshot(plan.build(mode))
    return {k: v for k, v in sorted(final.items()) if base.get(k) != v}


def _conf_value(value: Any, factor: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    scaled = value * factor
    if isinstance(scaled, float) and scaled.is_integer() and (factor != 1 or isinstance(value, int)):
        scaled = int(scaled)
    return repr(scaled) if isinstance(scaled, float) else str(scaled)


def render(model_key: str, loadgen_scenario: str, diff: Mapping[str, Any]) -> str:
    keys = {**_COMMON, **_BY_SCENARIO.get(loadgen_scenario, {})}
    lines = [
        "# The settings pytest-mlperf applied over loadgen's mlperf.conf for this run (run",
        "# profile, --mlperf-user-conf, the mlperf marker, --mlperf-setting), in user.conf form.",
    ]
    unmapped = []
    for name, value in diff.items():
        if name in keys:
            key, factor = keys[name]
            lines.append(f"{model_key}.{loadgen_scenario}.{key} = {_conf_value(value, factor)}")
        elif not name.startswith(_OTHER_SCENARIOS) or name in _BY_SCENARIO.get(loadgen_scenario, {}):
            unmapped.append(f"# {name} = {value!r} (TestSettings field with no user.conf key)")
    if len(lines) == 2:
        lines.append("# (none: mlperf.conf's values as they are)")
    return "\n".join(lines + unmapped) + "\n"


def user_conf_for(plan: Any, mode: Mode) -> str:
    """The ``user.conf`` of ``plan``'s run in ``mode``."""
    return render(plan.model_key, plan.scenario.loadgen_name, settings_diff(plan, mode))
