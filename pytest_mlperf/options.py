"""``--mlperf-*`` options and ini keys -> one frozen :class:`MlperfOptions` in ``config.stash``.

Every option falls back to an ini key of the same name with underscores (``mlperf_scenario``),
then to its default. Values are validated once, in ``pytest_configure``; a bad value raises
``pytest.UsageError`` naming the option, the value and the valid choices.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from pytest_mlperf.vocabulary import Mode, Profile, Scenario

E = TypeVar("E", bound=enum.Enum)


@dataclass(frozen=True)
class Option:
    name: str  # without the --mlperf- prefix
    help: str
    default: Any = None
    multiple: bool = False

    @property
    def flag(self) -> str:
        return f"--mlperf-{self.name}"

    @property
    def ini(self) -> str:
        return "mlperf_" + self.name.replace("-", "_")


OPTIONS: tuple[Option, ...] = (
    Option("scenario", "MLPerf scenario(s), comma-separated: Offline, Server, SingleStream, Interactive.", "Offline"),
    Option("mode", "performance, accuracy, or both (a performance and an accuracy test each).", "both"),
    Option("profile", "quick: CI-sized runs over the data set; official: mlperf.conf durations and counts.", "quick"),
    Option("backend", "system under test: hf (transformers), vllm, or one a plugin registers.", "hf"),
    Option("model", "model folder (HF format). Default: the embedded tiny Llama model."),
    Option("dataset", "cnn_eval.json-schema file. Default: the embedded sample set."),
    Option("total-samples", "use only the first N records of the data set (QSL total count)."),
    Option("performance-samples", "QSL performance sample count (default: all used records)."),
    Option("user-conf", "loadgen user.conf applied after mlperf.conf (model.scenario.key = value)."),
    Option("run-timeout", "fail a loadgen run that takes longer than this many seconds (a hung engine)."),
    Option("output", "folder for every run's loadgen logs, one folder per test.", "mlperf-results"),
    Option("setting", "loadgen TestSettings override KEY=VALUE (repeatable), highest precedence.", multiple=True),
    Option("engine-arg", "engine argument KEY=VALUE (repeatable; VALUE parsed as JSON when it can be).", multiple=True),
)


@dataclass(frozen=True)
class MlperfOptions:
    """The validated options of one session."""

    scenarios: tuple[Scenario, ...] = (Scenario.OFFLINE,)
    mode: Mode = Mode.BOTH
    profile: Profile = Profile.QUICK
    backend: str = "hf"
    model: Path | None = None
    dataset: Path | None = None
    total_samples: int | None = None
    performance_samples: int | None = None
    run_timeout: float | None = None
    user_conf: Path | None = None
    output: Path = Path("mlperf-results")
    settings: Mapping[str, Any] = field(default_factory=dict)
    engine_args: Mapping[str, Any] = field(default_factory=dict)

    def reproduce_flags(self) -> str:
        """The command-line flags that reproduce this session's choices."""
        flags = [
            f"--mlperf-scenario={','.join(s.value for s in self.scenarios)}",
            f"--mlperf-mode={self.mode.value}",
            f"--mlperf-profile={self.profile.value}",
            f"--mlperf-backend={self.backend}",
        ]
        for name, value in (("model", self.model), ("dataset", self.dataset),
                            ("total-samples", self.total_samples),
                            ("performance-samples", self.performance_samples),
                            ("user-conf", self.user_conf)):
            if value is not None:
                flags.append(f"--mlperf-{name}={value}")
        flags += [f"--mlperf-setting={k}={v}" for k, v in self.settings.items()]
        flags += [f"--mlperf-engine-arg={k}={json.dumps(v)}" for k, v in self.engine_args.items()]
        return " ".join(flags)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("mlperf", "MLPerf Inference benchmarks (pytest-mlperf)")
    for opt in OPTIONS:
        if opt.multiple:
            group.addoption(opt.flag, action="append", default=None, dest=opt.ini, help=opt.help)
            parser.addini(opt.ini, opt.help, type="linelist", default=[])
        else:
            group.addoption(opt.flag, action="store", default=None, dest=opt.ini, help=opt.help)
            parser.addini(opt.ini, opt.help, default=opt.default)


def _usage(opt: Option, value: object, expected: str) -> pytest.UsageError:
    return pytest.UsageError(f"{opt.flag} (ini {opt.ini}): invalid value {value!r}; {expected}")


def _enum(opt: Option, raw: str, kind: type[E]) -> E:
    by_name = {m.value.lower(): m for m in kind}
    member = by_name.get(raw.strip().lower())
    if member is None:
        raise _usage(opt, raw, "expected one of: " + ", ".join(m.value for m in kind))
    return member


def _positive_int(opt: Option, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise _usage(opt, raw, "expected a positive integer")
    return value


def _path(opt: Option, raw: str, rootpath: Path, *, must_exist: bool, kind: str) -> Path:
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = (Path.cwd() / path).resolve()
    if must_exist and not path.exists():
        raise _usage(opt, raw, f"no such {kind}: {path}")
    return path


def _pairs(opt: Option, items: Sequence[str], parse_value: Callable[[str], Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise _usage(opt, item, "expected KEY=VALUE")
        out[key.strip()] = parse_value(value.strip())
    return out


def parse_engine_args(items: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` items as ``--mlperf-engine-arg`` reads them (a value is JSON where it
    parses as JSON, else the string), for scripts that take the same arguments."""
    return _pairs(next(o for o in OPTIONS if o.name == "engine-arg"), items, _json_or_str)


def _json_or_str(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _number(value: str) -> Any:
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(value, 0)
    except ValueError:
        return float(value)


def parse(config: pytest.Config) -> MlperfOptions:
    """Read every option (command line, else ini, else default) and validate it."""

    def raw(opt: Option) -> Any:
        value = config.getoption(opt.ini)
        if value is None:
            value = config.getini(opt.ini)
        if opt.multiple:
            return list(value or [])
        return None if value in (None, "") else str(value)

    by_name = {o.name: o for o in OPTIONS}
    o = by_name.__getitem__
    values: dict[str, Any] = {}
    scenarios = tuple(
        _enum(o("scenario"), s, Scenario) for s in raw(o("scenario")).split(",") if s.strip()
    )
    if not scenarios:
        raise _usage(o("scenario"), raw(o("scenario")), "expected at least one scenario")
    values["scenarios"] = tuple(dict.fromkeys(scenarios))
    values["mode"] = _enum(o("mode"), raw(o("mode")), Mode)
    values["profile"] = _enum(o("profile"), raw(o("profile")), Profile)
    values["backend"] = raw(o("backend")).strip()
    root = config.rootpath
    if raw(o("model")):
        values["model"] = _path(o("model"), raw(o("model")), root, must_exist=True, kind="model folder")
    if raw(o("dataset")):
        values["dataset"] = _path(o("dataset"), raw(o("dataset")), root, must_exist=True, kind="data set file")
    if raw(o("user-conf")):
        values["user_conf"] = _path(o("user-conf"), raw(o("user-conf")), root, must_exist=True, kind="user.conf file")
    if raw(o("run-timeout")):
        try:
            values["run_timeout"] = float(raw(o("run-timeout")))
        except ValueError:
            values["run_timeout"] = 0.0
        if values["run_timeout"] <= 0:
            raise _usage(o("run-timeout"), raw(o("run-timeout")), "expected a positive number of seconds")
    for name in ("total-samples", "performance-samples"):
        if raw(o(name)):
            values[name.replace("-", "_")] = _positive_int(o(name), raw(o(name)))
    values["output"] = _path(o("output"), raw(o("output")), root, must_exist=False, kind="folder")
    try:
        values["settings"] = _pairs(o("setting"), raw(o("setting")), _number)
    except ValueError as exc:
        raise _usage(o("setting"), raw(o("setting")), f"values must be numbers ({exc})") from exc
    values["settings"] = _check_settings(o("setting"), values["settings"])
    values["engine_args"] = _pairs(o("engine-arg"), raw(o("engine-arg")), _json_or_str)
    return MlperfOptions(**values)


def _check_settings(opt: Option, settings: Mapping[str, Any]) -> dict[str, Any]:
    if not settings:
        return {}
    from pytest_mlperf.loadgen.settings import SettingsError, check_overrides

    try:
        return check_overrides(settings, opt.flag)
    except SettingsError as exc:
        raise pytest.UsageError(f"{exc} (ini {opt.ini})") from None
