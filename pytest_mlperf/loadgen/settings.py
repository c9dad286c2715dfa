"""Loadgen TestSettings: mlperf.conf, then the run profile, user.conf, the marker, the CLI.

Loadgen's ``FromConfig`` applies its built-in mlperf.conf only on the first call of a process,
logs "Multiple conf files are used" as an *error* into the next run's detail log on later calls,
and a pytest session runs many tests in one process. So mlperf.conf and user.conf are applied by
loadgen's own parser in a child process (cached per model, scenario, profile and user.conf) and
the resulting values are set by attribute here: the precedence
``model.scenario.key > *.scenario.key > model.*.key > *.*.key`` stays loadgen's, and this
process never calls ``FromConfig``.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_mlperf.core.vocabulary import Mode, Profile, Scenario


class SettingsError(ValueError):
    """A setting that loadgen would reject or silently misread; the message names its source."""


def conf_model(benchmark: str, scenario: Scenario) -> str:
    """The mlperf.conf model key: ``llama3.1-8b`` -> ``llama3_1-8b`` (+ ``-interactive``)."""
    key = benchmark.replace(".", "_")
    if scenario is Scenario.INTERACTIVE and not key.endswith("-interactive"):
        key += "-interactive"
    return key


_SNAPSHOT = r"""
import json, os, sys, tempfile
import mlperf_loadgen as lg

req = json.loads(sys.argv[1])
model, scenario = req["model"], req["scenario"]


def fresh():
    s = lg.TestSettings()
    s.scenario = getattr(lg.TestScenario, scenario)
    return s


def snapshot(s):
    out = {}
    for name in dir(s):
        if name.startswith("_") or name in ("FromConfig", "scenario", "mode"):
            continue
        value = getattr(s, name)
        if isinstance(value, (bool, int, float, str)):
            out[name] = value
    return out


s = fresh()
rc = s.FromConfig("", model, scenario, 0)
if rc != 0:
    print(json.dumps({"rc": rc, "stage": "mlperf.conf"}))
    sys.exit(0)
values = snapshot(s)
values.update(req["preset"])
if req["user_conf"]:
    # The first conf_type=1 call also re-applies mlperf.conf; spend it on an empty file so
    # the user.conf call changes exactly the keys user.conf names.
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as empty:
        pass
    fresh().FromConfig(empty.name, model, scenario, 1)
    os.unlink(empty.name)
    s = fresh()
    for name, value in values.items():
        setattr(s, name, value)
    rc = s.FromConfig(req["user_conf"], model, scenario, 1)
    if rc != 0:
        print(json.dumps({"rc": rc, "stage": "user.conf"}))
        sys.exit(0)
    values = snapshot(s)
print(json.dumps({"rc": 0, "values": values}))
"""


def conf_values(
    model: str, loadgen_scenario: str, preset: Mapping[str, Any], user_conf: Path | None
) -> Mapping[str, Any]:
    """TestSettings values from loadgen's built-in mlperf.conf, then ``preset``, then
    ``user_conf``, all applied by loadgen's own parser in a child process (cached)."""
    key = json.dumps({"model": model, "scenario": loadgen_scenario, "preset": dict(preset),
                      "user_conf": str(user_conf) if user_conf else None}, sort_keys=True)
    mtime = user_conf.stat().st_mtime_ns if user_conf and user_conf.exists() else 0
    return _conf_values(key, mtime)


@functools.cache
def _conf_values(request: str, _mtime: int) -> Mapping[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", _SNAPSHOT, request], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SettingsError(f"reading loadgen's mlperf.conf failed: {proc.stderr.strip()}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    req = json.loads(request)
    if data["rc"] != 0:
        if data["stage"] == "user.conf":
            raise SettingsError(
                f"{req['user_conf']}: loadgen could not read this user.conf (code {data['rc']}); "
                "lines must be 'model.scenario.key = number'"
            )
        raise SettingsError(f"loadgen's built-in mlperf.conf rejected model '{req['model']}'")
    return data["values"]


#: What the quick profile changes, per scenario: runs short enough for a CPU CI, over the
#: samples the data set has (the Offline sample count comes from the QSL size).
QUICK_PROFILE: Mapping[Scenario, Mapping[str, Any]] = {
    Scenario.OFFLINE: {"min_duration_ms": 0, "offline_expected_qps": 0.001},
    Scenario.SERVER: {"min_duration_ms": 10_000},
    Scenario.INTERACTIVE: {"min_duration_ms": 10_000},
    # Not 10 s: loadgen lays out min_duration / single_stream_expected_latency_ns queries
    # (llama3.1-8b-edge: 10 s / 5 ms = 2,048 after rounding to whole passes of the samples),
    # minutes at ~10 queries/s on any engine. With no duration it issues min_query_count (64,
    # rounded up to whole passes: the data set once).
    Scenario.SINGLE_STREAM: {"min_duration_ms": 0},
}

#: Late queries (over the latency limit) a quick Server/Interactive run tolerates and still
#: passes loadgen's early stopping: with none tolerated (459 queries at p99) one slow query makes
#: a quick run INVALID however fast the engine is otherwise (it then needs 662).
QUICK_LATE_QUERIES = 2


def _quick_queries() -> dict[Scenario, int]:
    from pytest_mlperf.loadgen.early_stopping import queries_needed

    server = queries_needed(QUICK_LATE_QUERIES, 0.99)  # 838 at mlperf.conf's p99
    return {Scenario.SERVER: server, Scenario.INTERACTIVE: server,
            # SingleStream's p90 estimate needs 64 queries; it has no latency limit to miss
            Scenario.SINGLE_STREAM: 64}


#: Queries a quick run lays out (before rounding to whole passes over the samples), from loadgen's
#: early-stopping arithmetic (:mod:`.early_stopping`): Server/Interactive pass with up to
#: :data:`QUICK_LATE_QUERIES` late queries. Fewer make a quick run INVALID on a slow query or two.
EARLY_STOPPING_MIN_QUERIES: Mapping[Scenario, int] = _quick_queries()


@dataclass(frozen=True)
class SettingsPlan:
    """Everything that decides one run's TestSettings, in precedence order (low to high)."""

    benchmark: str
    scenario: Scenario
    profile: Profile
    total_count: int
    performance_count: int
    user_conf: Path | None = None
    marker_overrides: Mapping[str, Any] = field(default_factory=dict)
    cli_overrides: Mapping[str, Any] = field(default_factory=dict)

    @property
    def model_key(self) -> str:
        return conf_model(self.benchmark, self.scenario)

    def profile_values(self) -> dict[str, Any]:
        if self.profile is Profile.OFFICIAL:
            return {}
        values = dict(QUICK_PROFILE[self.scenario])
        values["min_query_count"] = EARLY_STOPPING_MIN_QUERIES.get(
            self.scenario, self.performance_count
        )
        return values

    def build(self, mode: Mode) -> Any:
        """A loadgen ``TestSettings`` for one run in ``mode`` (performance or accuracy).
        :class:`SettingsError` names every setting loadgen could not survive, or that names
        a model loadgen does not know, before loadgen sees any of them."""
        import mlperf_loadgen as lg

        from pytest_mlperf.loadgen.mlperf_conf import known_models
        from pytest_mlperf.loadgen.ranges import check_run

        models = known_models()
        if models and self.model_key not in models:
            raise SettingsError(
                f"benchmark '{self.benchmark}': loadgen's mlperf.conf has no model "
                f"'{self.model_key}' for {self.scenario.value}, so every setting would be a default"
            )
        settings = lg.TestSettings()
        settings.scenario = getattr(lg.TestScenario, self.scenario.loadgen_name)
        base = conf_values(self.model_key, self.scenario.loadgen_name, self.profile_values(), self.user_conf)
        _apply(settings, base, "mlperf.conf/user.conf")
        _apply(settings, self.marker_overrides, "the mlperf marker")
        _apply(settings, self.cli_overrides, "--mlperf-setting")
        user = self.user_values()
        # loadgen issues this many distinct samples; more than the QSL holds is an error there.
        requested = settings.performance_sample_count_override
        problems = []
        if requested > self.performance_count and "performance_sample_count_override" in user:
            problems.append(
                f"performance_sample_count_override = {requested} "
                f"({user['performance_sample_count_override'][1]}) is more than the "
                f"{self.performance_count} performance samples of the QSL "
                "(--mlperf-performance-samples, --mlperf-total-samples, the data set's size)"
            )
        if requested == 0 or requested > self.performance_count:
            settings.performance_sample_count_override = self.performance_count
        problems += check_run(
            snapshot(settings), self.scenario.loadgen_name, total_count=self.total_count,
            performance_count=self.performance_count,
            source=lambda name: user[name][1] if name in user else "mlperf.conf/run profile",
        )
        if problems:
            raise SettingsError("; ".join(problems))
        settings.mode = (
            lg.TestMode.AccuracyOnly if mode is Mode.ACCURACY else lg.TestMode.PerformanceOnly
        )
        return settings

    def user_values(self) -> dict[str, tuple[Any, str]]:
        """The TestSettings fields the user set, each with the value that wins and where it
        comes from (user.conf, the marker, ``--mlperf-setting``: the last wins)."""
        out: dict[str, tuple[Any, str]] = {}
        if self.user_conf is not None:
            name = self.scenario.loadgen_name
            without = conf_values(self.model_key, name, self.profile_values(), None)
            with_conf = conf_values(self.model_key, name, self.profile_values(), self.user_conf)
            for key, value in with_conf.items():
                if without.get(key) != value:
                    out[key] = (value, str(self.user_conf))
        out.update({k: (v, "the mlperf marker") for k, v in self.marker_overrides.items()})
        out.update({k: (v, "--mlperf-setting") for k, v in self.cli_overrides.items()})
        return out


def snapshot(settings: Any) -> dict[str, Any]:
    """Every overridable field of a loadgen ``TestSettings`` and its value."""
    return {name: getattr(settings, name) for name in setting_fields()}


#: TestSettings attributes that are not settings a user may override
_NOT_SETTINGS = frozenset({"FromConfig", "scenario", "mode"})


def setting_fields() -> dict[str, type]:
    """Every overridable loadgen TestSettings field and its Python type (bool, int, float,
    str), read from loadgen itself."""
    import mlperf_loadgen as lg

    defaults = lg.TestSettings()
    out: dict[str, type] = {}
    for name in dir(defaults):
        if name.startswith("_") or name in _NOT_SETTINGS:
            continue
        value = getattr(defaults, name)
        if isinstance(value, (bool, int, float, str)):
            out[name] = type(value)
    return out


def check_overrides(values: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Validate TestSettings overrides without running anything: every key a loadgen field,
    every value of its type (an integral float for an int field; a bool or 0/1 for a flag).
    Returns them converted; raises :class:`SettingsError` naming ``source``, the key and the
    field's type otherwise."""
    if not isinstance(values, Mapping):
        raise SettingsError(f"{source}: expected a mapping of TestSettings fields, got {values!r}")
    fields = setting_fields()
    out: dict[str, Any] = {}
    for name, value in values.items():
        kind = fields.get(name) if isinstance(name, str) else None
        if kind is None:
            import difflib

            close = difflib.get_close_matches(str(name), list(fields), n=3)
            hint = f"; did you mean {', '.join(close[:3])}?" if close else ""
            raise SettingsError(f"{source}: {name!r} is not a loadgen TestSettings field{hint}")
        out[name] = _convert(name, value, kind, source)
    return out


def _convert(name: str, value: Any, kind: type, source: str) -> Any:
    from pytest_mlperf.loadgen.ranges import value_problem

    converted = _typed(name, value, kind, source)
    problem = value_problem(name, converted)
    if problem:
        raise SettingsError(f"{source}: {name} = {value!r} {problem}")
    return converted


def _typed(name: str, value: Any, kind: type, source: str) -> Any:
    bad = SettingsError(f"{source}: {name} = {value!r} is not a {kind.__name__} (loadgen's "
                        f"TestSettings.{name} is a {kind.__name__})")
    if kind is bool:
        if isinstance(value, bool) or value in (0, 1):
            return bool(value)
        raise bad
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if kind is str and isinstance(value, str):
            return value
        raise bad
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise bad
        if value < 0:
            raise SettingsError(f"{source}: {name} = {value!r} must not be negative")
        return int(value)
    if kind is float:
        return float(value)
    raise bad


def _apply(settings: Any, values: Mapping[str, Any], source: str) -> None:
    for name, value in values.items():
        if name.startswith("_") or not hasattr(settings, name) or name in ("FromConfig",):
            raise SettingsError(f"{source}: '{name}' is not a loadgen TestSettings field")
        current = getattr(settings, name)
        try:
            if isinstance(current, bool):
                value = bool(value)
            elif isinstance(current, int):
                value = int(value)
            elif isinstance(current, float):
                value = float(value)
            setattr(settings, name, value)
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"{source}: bad value {value!r} for '{name}' ({exc})") from exc
