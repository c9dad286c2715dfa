"""``--mlperf-*`` options and ini keys -> one frozen :class:`MlperfOptions` in ``config.stash``.

Every option falls back to an ini key of the same name with underscores (``mlperf_scenario``),
then to its default. Values are validated once, in ``pytest_configure``; a bad value raises
``pytest.UsageError`` naming the option, the value and the valid choices.
"""

from __future__ import annotations

import argparse
import enum
import json
import os
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from pytest_mlperf.core.vocabulary import Mode, Profile, Scenario
from pytest_mlperf.gate.compare import FailBound, parse_fail_bound
from pytest_mlperf.gate.thresholds import ThresholdRule, parse_rule
from pytest_mlperf.run.peak import PeakTolerance

#: the compliance tests ``--mlperf-compliance`` runs
COMPLIANCE_TESTS = ("TEST06",)

E = TypeVar("E", bound=enum.Enum)


@dataclass(frozen=True)
class Option:
    name: str  # without the --mlperf- prefix
    help: str
    default: Any = None
    multiple: bool = False
    #: the value of the bare flag (``--mlperf-compare`` means ``--mlperf-compare=last``)
    const: str | None = None

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
    Option("allow-nonconformant", "with --mlperf-profile=official, run what MLPerf's rules forbid (prefix caching, sampling, a data set subset, a performance sample count below the benchmark's) instead of refusing it; the run is labelled not MLPerf either way (docs/rules.md).", const="true"),
    Option("backend", "system under test: hf (transformers), vllm, openai (served endpoints), or one a plugin registers.", "hf"),
    Option("model", "model folder (HF format). Default: the embedded tiny Llama model."),
    Option("endpoint", "base URL of an OpenAI-compatible server of the model, e.g. http://node1:8000 (repeatable: requests go to the least busy); selects the openai backend. --mlperf-model then names a folder with the served model's tokenizer.", multiple=True),
    Option("served-model", "the name the endpoints serve the model under (GET /v1/models); needed with --mlperf-endpoint."),
    Option("api-key-env", "name of the environment variable that holds the endpoints' API key (the key is never written anywhere)."),
    Option("endpoint-timeout", "seconds an endpoint may take to become ready, and the longest a response may stay silent before the run fails (default 300).", "300"),
    Option("dataset", "cnn_eval.json-schema file. Default: the embedded sample set."),
    Option("total-samples", "use only the first N records of the data set (QSL total count)."),
    Option("performance-samples", "QSL performance sample count (default: all used records)."),
    Option("user-conf", "loadgen user.conf applied after mlperf.conf (model.scenario.key = value)."),
    Option("run-timeout", "fail a loadgen run that takes longer than this many seconds (a hung engine). Default: derived from each run's settings (docs/reliability.md)."),
    Option("engine-timeout", "fail an engine start (model load) or close that takes longer than this many seconds. Default: 1800."),
    Option("output", "folder for every run's loadgen logs, one folder per test.", "mlperf-results"),
    Option("setting", "loadgen TestSettings override KEY=VALUE (repeatable), highest precedence.", multiple=True),
    Option("engine-arg", "engine argument KEY=VALUE (repeatable; VALUE parsed as JSON when it can be).", multiple=True),
    Option("threshold", "gate beyond loadgen's validity, [BENCHMARK:][SCENARIO:]GATE, e.g. llama3.1-8b:Server:ttft_p99_ms<=2000 or tokens_per_second>=500 (repeatable; the most specific wins, then these over the marker).", multiple=True),
    Option("repeat", "run each performance test N times: its figures and verdict are the runs' medians, and the spread is reported.", "1"),
    Option("save", "store this session's records in --mlperf-storage, numbered per machine (LABEL names the file; default: the commit).", const="true"),
    Option("storage", "folder of stored sessions, one subfolder per machine.", ".mlperf"),
    Option("compare", "compare each test with a stored session: last (the bare flag), its number, a label or commit, or a file; prints the deltas.", const="last"),
    Option("compare-fail", "fail a test whose FIGURE regressed past BOUND against the stored run, e.g. tokens_per_second:5%, ttft_p99_ms:10%, rouge1:0.5; FIGURE:BOUND:mwu fails only a change that is also significant over --mlperf-repeat's runs (Mann-Whitney, 5%); outputs fails an accuracy test whose output tokens differ from the stored run's (repeatable; implies --mlperf-compare).", multiple=True),
    Option("compare-confirm", "rerun a performance test once when a --mlperf-compare-fail bound on a figure fails it; the test fails only if the rerun fails the bound too (both runs reported).", const="true"),
    Option("client-processes", "processes the openai backend's client streams from: auto (one below 8 usable cores, else one per 2 cores, at most 8; under xdist, of the worker's share) or N; loadgen stays in this process (docs/scale.md).", "auto"),
    Option("endpoints-per-worker", "under xdist (-n), each worker gets its own N of the --mlperf-endpoint list (gw0 the first N, gw1 the next...), so workers benchmark different nodes at once. Default: every worker uses every endpoint."),
    Option("gpus-per-worker", "under xdist (-n), devices pinned to each worker through CUDA_VISIBLE_DEVICES (tensor parallelism: match tensor_parallel_size). Default 1."),
    Option("compliance", "compliance tests run after each performance test: TEST06 (audit run; first token, EOS and sample length checks; verify_accuracy.txt)."),
    Option("find-peak", "Server/Interactive: search the highest VALID target QPS from server_target_qps (doubling or halving, then bisection) to TOLERANCE, 5% (the bare flag) or a QPS amount; the peak run is the test's result.", const="5%"),
    Option("progress-interval", "seconds between live progress lines in non-interactive logs (a terminal gets one line, redrawn every second); 0 turns live progress off.", "30"),
    Option("json", "write every benchmark record of the session to this JSON file."),
    Option("submission-dir", "write the MLPerf results tree (closed/<submitter>/results/<system>/...) from the session's kept logs into this folder; needs --mlperf-submitter and --mlperf-system-desc."),
    Option("submitter", "the submitting organization, for --mlperf-submission-dir."),
    Option("system-desc", "the system description JSON (MLPerf systems/<system>.json; <system> is its file name), for --mlperf-submission-dir."),
)


@dataclass(frozen=True)
class MlperfOptions:
    """The validated options of one session."""

    scenarios: tuple[Scenario, ...] = (Scenario.OFFLINE,)
    mode: Mode = Mode.BOTH
    profile: Profile = Profile.QUICK
    #: --mlperf-allow-nonconformant: the official profile labels instead of refusing
    allow_nonconformant: bool = False
    backend: str = "hf"
    model: Path | None = None
    #: served model: endpoint base URLs, the name they serve it under, the API key's variable
    endpoints: tuple[str, ...] = ()
    served_model: str | None = None
    api_key_env: str | None = None
    endpoint_timeout: float = 300.0
    #: the openai client's processes (None: auto, by the usable cores)
    client_processes: int | None = None
    #: under xdist: each worker's share of ``endpoints`` (None: every worker uses them all)
    endpoints_per_worker: int | None = None
    dataset: Path | None = None
    total_samples: int | None = None
    performance_samples: int | None = None
    run_timeout: float | None = None
    engine_timeout: float | None = None
    user_conf: Path | None = None
    output: Path = Path("mlperf-results")
    settings: Mapping[str, Any] = field(default_factory=dict)
    engine_args: Mapping[str, Any] = field(default_factory=dict)
    thresholds: tuple[ThresholdRule, ...] = ()
    repeat: int = 1
    #: None: do not save; else the label of the stored file ("" for the commit)
    save: str | None = None
    storage: Path = Path(".mlperf")
    #: None: compare with nothing; "last", a number, a label, a commit or a file
    compare: str | None = None
    compare_fail: tuple[FailBound, ...] = ()
    #: --mlperf-compare-confirm: a failed figure bound reruns the test once
    compare_confirm: bool = False
    gpus_per_worker: int | None = None
    compliance: tuple[str, ...] = ()
    find_peak: PeakTolerance | None = None
    #: seconds between live progress lines in logs; 0: no live progress
    progress_interval: float = 30.0
    json: Path | None = None
    submission_dir: Path | None = None
    submitter: str | None = None
    system_desc: Path | None = None

    def reproduce_flags(self) -> str:
        """The command-line flags that reproduce this session's choices."""
        flags = [
            f"--mlperf-scenario={','.join(s.value for s in self.scenarios)}",
            f"--mlperf-mode={self.mode.value}",
            f"--mlperf-profile={self.profile.value}",
            *(["--mlperf-allow-nonconformant"] if self.allow_nonconformant else []),
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
        flags += [f"--mlperf-threshold='{t}'" for t in self.thresholds]
        if self.repeat > 1:
            flags.append(f"--mlperf-repeat={self.repeat}")
        flags += [f"--mlperf-compliance={c}" for c in self.compliance]
        if self.find_peak is not None:
            flags.append(f"--mlperf-find-peak={self.find_peak}")
        flags += [f"--mlperf-endpoint={e}" for e in self.endpoints]
        for name, value in (("served-model", self.served_model), ("api-key-env", self.api_key_env)):
            if value is not None:
                flags.append(f"--mlperf-{name}={value}")
        if self.endpoints and self.endpoint_timeout != 300.0:
            flags.append(f"--mlperf-endpoint-timeout={self.endpoint_timeout:g}")
        if self.client_processes is not None:
            flags.append(f"--mlperf-client-processes={self.client_processes}")
        for name, seconds in (("run-timeout", self.run_timeout), ("engine-timeout", self.engine_timeout)):
            if seconds is not None:
                flags.append(f"--mlperf-{name}={seconds:g}")
        if self.gpus_per_worker is not None:
            flags.append(f"--mlperf-gpus-per-worker={self.gpus_per_worker}")
        # the comparison: which stored session, which bounds (saving again is left out: a rerun
        # that stored a second copy of the same build would become the next run's baseline)
        if self.compare is not None or self.compare_fail:
            flags.append(f"--mlperf-storage={self.storage}")
            if self.compare is not None and (self.compare != "last" or not self.compare_fail):
                flags.append(f"--mlperf-compare={self.compare}")
            flags += [f"--mlperf-compare-fail={bound}" for bound in self.compare_fail]
            if self.compare_confirm:
                flags.append("--mlperf-compare-confirm")
        if self.endpoints_per_worker is not None:
            flags.append(f"--mlperf-endpoints-per-worker={self.endpoints_per_worker}")
        return " ".join(shlex.quote(f) if f[-1] != "'" else f for f in flags)


#: what to type for each option's value in ``pytest --help``
METAVARS = {
    "scenario": "SCENARIO[,...]", "mode": "MODE", "profile": "PROFILE", "backend": "NAME", "model": "PATH",
    "endpoint": "URL", "served-model": "NAME", "api-key-env": "VAR", "endpoint-timeout": "SECONDS",
    "endpoints-per-worker": "N", "client-processes": "auto|N",
    "dataset": "PATH", "total-samples": "N", "performance-samples": "N", "user-conf": "PATH",
    "run-timeout": "SECONDS", "engine-timeout": "SECONDS", "output": "PATH", "setting": "KEY=VALUE",
    "engine-arg": "KEY=VALUE", "threshold": "[BENCHMARK:][SCENARIO:]GATE", "repeat": "N", "save": "LABEL",
    "storage": "PATH", "compare": "WHICH", "compare-fail": "FIGURE:BOUND", "compare-confirm": "yes|no", "gpus-per-worker": "N",
    "allow-nonconformant": "yes|no", "compliance": "TEST", "find-peak": "TOLERANCE", "progress-interval": "SECONDS", "json": "PATH",
    "submission-dir": "PATH", "submitter": "ORG", "system-desc": "PATH",
}
#: ``pytest --help``'s groups, in the order of the tasks; an option in none of them goes last
GROUPS = (
    ("mlperf", "MLPerf: what to run (pytest-mlperf)",
     ("scenario", "mode", "profile", "allow-nonconformant", "repeat", "find-peak", "compliance", "setting", "user-conf",
      "run-timeout", "engine-timeout", "gpus-per-worker", "output", "progress-interval")),
    ("mlperf-system", "MLPerf: data set, model and engine",
     ("backend", "model", "dataset", "total-samples", "performance-samples", "engine-arg")),
    ("mlperf-endpoints", "MLPerf: served endpoints (openai backend)",
     ("endpoint", "served-model", "api-key-env", "endpoint-timeout", "client-processes",
      "endpoints-per-worker")),
    ("mlperf-reports", "MLPerf: reports", ("json",)),
    ("mlperf-gates", "MLPerf: gates and stored sessions",
     ("threshold", "save", "storage", "compare", "compare-fail", "compare-confirm")),
    ("mlperf-submission", "MLPerf: submission", ("submission-dir", "submitter", "system-desc")),
)


def _help(opt: Option) -> str:
    text = opt.help
    if opt.const is not None and opt.const != "true" and "bare flag" not in text:
        text += f" The bare flag means {opt.const}."
    if opt.default is not None and "default" not in text.lower():
        text += f" Default: {opt.default}."
    return text.replace("%", "%%")


def add_options(parser: pytest.Parser) -> None:
    placed = {name for _, _, names in GROUPS for name in names}
    by_name = {opt.name: opt for opt in OPTIONS}
    groups = [(key, title, [by_name[n] for n in names if n in by_name]) for key, title, names in GROUPS]
    groups.append(("mlperf-other", "MLPerf: more", [o for o in OPTIONS if o.name not in placed]))
    for key, title, members in groups:
        if not members:
            continue
        group = parser.getgroup(key, title)
        for opt in members:
            metavar = METAVARS.get(opt.name, "VALUE")
            if opt.multiple:
                group.addoption(opt.flag, action="append", default=None, dest=opt.ini, metavar=metavar,
                                help=_help(opt) + ("" if "repeatable" in opt.help.lower() else " Repeatable."))
                parser.addini(opt.ini, opt.help, type="linelist", default=[])
            elif opt.const is not None:
                group.addoption(opt.flag, action="store", nargs="?", const=opt.const, default=None,
                                dest=opt.ini, metavar=metavar, help=_help(opt))
                parser.addini(opt.ini, opt.help, default=opt.default)
            else:
                group.addoption(opt.flag, action="store", default=None, dest=opt.ini, metavar=metavar,
                                help=_help(opt))
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


def _path(opt: Option, raw: str, base: Path, *, must_exist: bool, kind: str) -> Path:
    """``raw`` made absolute against ``base`` (the ini file's folder for an ini value, else the
    current directory)."""
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = (base / path).resolve()
    if must_exist and not path.exists():
        raise _usage(opt, raw, f"no such {kind}: {path}")
    if must_exist and kind == "data set file" and path.is_dir():  # (user.conf: _user_conf says more)
        raise _usage(opt, raw, f"{path} is a folder, not a {kind}; name the file in it")
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

    def base(opt: Option) -> Path:
        """Where a relative path of ``opt`` starts: the ini file's folder when the ini gave it."""
        if config.getoption(opt.ini) is None and config.inipath is not None:
            return config.inipath.parent
        return Path.cwd()

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
    allow = raw(o("allow-nonconformant"))
    if allow is not None:
        if allow.strip().lower() not in ("true", "yes", "1", "on", "false", "no", "0", "off"):
            raise _usage(o("allow-nonconformant"), allow, "expected true or false (the bare flag: true)")
        values["allow_nonconformant"] = allow.strip().lower() in ("true", "yes", "1", "on")

    values.update(_endpoint_options(config, o, raw, values["backend"]))
    if raw(o("model")):
        values["model"] = _path(o("model"), raw(o("model")), base(o("model")), must_exist=True, kind="model folder")
    if values.get("endpoints") and values.get("model") is not None:
        _served_tokenizer(o("model"), raw(o("model")), values["model"])
    if raw(o("dataset")):
        values["dataset"] = _path(o("dataset"), raw(o("dataset")), base(o("dataset")), must_exist=True, kind="data set file")
    if raw(o("user-conf")):
        values["user_conf"] = _user_conf(o("user-conf"), _path(o("user-conf"), raw(o("user-conf")), base(o("user-conf")), must_exist=True, kind="user.conf file"))
    for name in ("run-timeout", "engine-timeout"):
        if raw(o(name)):
            try:
                values[name.replace("-", "_")] = float(raw(o(name)))
            except ValueError:
                values[name.replace("-", "_")] = 0.0
            if not 0 < values[name.replace("-", "_")] < float("inf"):
                raise _usage(o(name), raw(o(name)), "expected a positive number of seconds")
    for name in ("total-samples", "performance-samples"):
        if raw(o(name)):
            values[name.replace("-", "_")] = _positive_int(o(name), raw(o(name)))
    values["output"] = _output(o("output"), _path(o("output"), raw(o("output")), base(o("output")), must_exist=False, kind="folder"))
    try:
        values["settings"] = _pairs(o("setting"), raw(o("setting")), _number)
    except ValueError as exc:
        raise _usage(o("setting"), raw(o("setting")), f"values must be numbers ({exc})") from exc
    values["settings"] = _check_settings(o("setting"), values["settings"], values["scenarios"])
    values["engine_args"] = _pairs(o("engine-arg"), raw(o("engine-arg")), _json_or_str)
    values.update(_gate_options(o, raw, base))
    values.update(_report_options(o, raw, base))
    return MlperfOptions(**values)


def _gate_options(o: Callable[[str], Option], raw: Callable[[Option], Any],
                  base: Callable[[Option], Path]) -> dict[str, Any]:
    """Thresholds, repeats, stored sessions and comparisons, xdist devices, compliance, peak."""
    values: dict[str, Any] = {}
    rules = []
    for text in raw(o("threshold")):
        try:
            rules.append(parse_rule(text))
        except ValueError as exc:
            raise _usage(o("threshold"), text, str(exc)) from None
    values["thresholds"] = tuple(rules)
    values["repeat"] = _positive_int(o("repeat"), raw(o("repeat")))
    for name in ("gpus-per-worker",):
        if raw(o(name)):
            values[name.replace("-", "_")] = _positive_int(o(name), raw(o(name)))
    save = raw(o("save"))
    if save is not None and save.strip().lower() not in ("false", "no", "0", "off"):
        values["save"] = "" if save.strip().lower() in ("true", "yes", "1", "on") else save.strip()
    values["storage"] = _path(o("storage"), raw(o("storage")), base(o("storage")), must_exist=False, kind="folder")
    bounds = []
    for text in raw(o("compare-fail")):
        try:
            bounds.append(parse_fail_bound(text))
        except argparse.ArgumentTypeError as exc:
            raise _usage(o("compare-fail"), text, str(exc)) from None
    values["compare_fail"] = tuple(bounds)
    compare = raw(o("compare"))
    if compare is not None and compare.strip().lower() not in ("false", "no", "off"):
        values["compare"] = "last" if compare.strip().lower() in ("true", "yes", "last") else compare.strip()
    elif bounds:
        values["compare"] = "last"
    confirm = raw(o("compare-confirm"))
    values["compare_confirm"] = confirm is not None and confirm.strip().lower() not in ("false", "no", "0", "off")
    if raw(o("compliance")):
        tests = tuple(dict.fromkeys(t.strip().upper() for t in raw(o("compliance")).split(",") if t.strip()))
        unknown = [t for t in tests if t not in COMPLIANCE_TESTS]
        if unknown or not tests:
            raise _usage(o("compliance"), raw(o("compliance")), "expected one of: " + ", ".join(COMPLIANCE_TESTS))
        values["compliance"] = tests
    if raw(o("find-peak")):
        try:
            values["find_peak"] = PeakTolerance.parse(raw(o("find-peak")))
        except ValueError as exc:
            raise _usage(o("find-peak"), raw(o("find-peak")), str(exc)) from None
    return values


def _report_options(o: Callable[[str], Option], raw: Callable[[Option], Any],
                    base: Callable[[Option], Path]) -> dict[str, Any]:
    """Live progress, the results JSON, the submission tree."""
    values: dict[str, Any] = {}
    interval = raw(o("progress-interval"))
    try:
        values["progress_interval"] = float(interval)
    except ValueError:
        values["progress_interval"] = -1.0
    if values["progress_interval"] < 0:
        raise _usage(o("progress-interval"), interval, "expected a number of seconds >= 0")
    if raw(o("json")):
        values["json"] = _path(o("json"), raw(o("json")), base(o("json")), must_exist=False, kind="file")
    tree = {name: raw(o(name)) for name in ("submission-dir", "submitter", "system-desc")}
    if any(tree.values()):
        missing = [o(name).flag for name, value in tree.items() if not value]
        if missing:
            given = next(name for name, value in tree.items() if value)
            raise _usage(o(given), tree[given], "the submission tree needs " + " and ".join(missing))
        values["submission_dir"] = _path(o("submission-dir"), tree["submission-dir"], base(o("submission-dir")),
                                         must_exist=False, kind="folder")
        submitter = tree["submitter"].strip()
        if not submitter or any(c in submitter for c in "/\\") or submitter in (".", ".."):
            raise _usage(o("submitter"), tree["submitter"], "expected an organization name usable as a folder name")
        values["submitter"] = submitter
        values["system_desc"] = _path(o("system-desc"), tree["system-desc"], base(o("system-desc")),
                                      must_exist=True, kind="system description file")
    return values


def _check_settings(opt: Option, settings: Mapping[str, Any], scenarios: Sequence[Scenario]) -> dict[str, Any]:
    if not settings:
        return {}
    from pytest_mlperf.loadgen.ranges import unread_problem
    from pytest_mlperf.loadgen.settings import SettingsError, check_overrides

    try:
        checked = check_overrides(settings, opt.flag)
    except SettingsError as exc:
        raise pytest.UsageError(f"{exc} (ini {opt.ini})") from None
    problem = unread_problem(checked, tuple(s.value for s in scenarios), f"{opt.flag} (ini {opt.ini})")
    if problem:
        raise pytest.UsageError(problem)
    return checked


def _user_conf(opt: Option, path: Path) -> Path:
    """Every line of the user.conf one loadgen applies (docs/reliability.md)."""
    from pytest_mlperf.loadgen.settings import SettingsError
    from pytest_mlperf.loadgen.userconf import check_user_conf

    try:
        check_user_conf(path)
    except SettingsError as exc:
        raise pytest.UsageError(f"{opt.flag} (ini {opt.ini}): {exc}") from None
    return path


def _served_tokenizer(opt: Option, raw: str, folder: Path) -> None:
    """With endpoints, ``--mlperf-model`` is only the served model's tokenizer: a folder without
    one is refused here, not by transformers at the first test."""
    from pytest_mlperf.backends.base import TOKENIZER_FILES

    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise _usage(opt, raw, f"with --mlperf-endpoint this folder gives the served model's "
                     f"tokenizer, and {folder} holds none ({', '.join(TOKENIZER_FILES)}): copy the "
                     "model's tokenizer files into it, or leave --mlperf-model out to use the "
                     "embedded model's")


def _output(opt: Option, path: Path) -> Path:
    """A folder the logs can go to: an existing writable folder, or one that can be made."""
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        what = "is a file" if existing == path else f"lies under the file {existing}"
        raise _usage(opt, str(path), f"{path} {what}; name a folder")
    import os

    if not os.access(existing, os.W_OK | os.X_OK):
        raise _usage(opt, str(path), f"cannot write to {existing}; name a folder you can write to")
    return path


def _endpoint_options(config: pytest.Config, o: Callable[[str], Option], raw: Callable[[Option], Any],
                      backend: str) -> dict[str, Any]:
    """A served model: endpoints, its name there, the API key's variable, the timeout. With
    endpoints and no --mlperf-backend on the command line, the backend is ``openai``."""
    values: dict[str, Any] = {}
    endpoints = []
    if raw(o("endpoint")):
        from pytest_mlperf.backends.openai import normalize_endpoint
    for url in raw(o("endpoint")):
        try:
            endpoints.append(normalize_endpoint(url))
        except ValueError as exc:
            raise _usage(o("endpoint"), url, str(exc)) from None
    values["endpoints"] = tuple(dict.fromkeys(endpoints))
    served = (raw(o("served-model")) or "").strip()
    if endpoints and not served:
        raise _usage(o("served-model"), served, "--mlperf-endpoint needs the name the servers "
                     "serve the model under (see GET <endpoint>/v1/models)")
    if served and not endpoints:
        raise _usage(o("served-model"), served, "it names the model at --mlperf-endpoint, and "
                     "no endpoint is given")
    values["served_model"] = served or None
    env = (raw(o("api-key-env")) or "").strip()
    if env and not env.replace("_", "").isalnum():
        raise _usage(o("api-key-env"), env, "expected the NAME of an environment variable")
    if env and not os.environ.get(env) and not hasattr(config, "workerinput"):
        # at configure, not at the engine's start after the collection and the model's tokenizer
        raise _usage(o("api-key-env"), env, f"the environment variable {env} is not set (or "
                     "empty): export it with the endpoints' API key (its value is never written)")
    values["api_key_env"] = env or None
    timeout = raw(o("endpoint-timeout"))
    try:
        values["endpoint_timeout"] = float(timeout)
    except ValueError:
        values["endpoint_timeout"] = 0.0
    if values["endpoint_timeout"] <= 0:
        raise _usage(o("endpoint-timeout"), timeout, "expected a positive number of seconds")
    processes = (raw(o("client-processes")) or "auto").strip().lower()
    if processes != "auto":
        if not processes.isdigit() or int(processes) < 1:
            raise _usage(o("client-processes"), processes, "expected auto or a positive number "
                         "of processes (1: the one-loop client)")
        values["client_processes"] = int(processes)
    per_worker = raw(o("endpoints-per-worker"))
    if per_worker:
        values["endpoints_per_worker"] = _positive_int(o("endpoints-per-worker"), per_worker)
        if not endpoints:
            raise _usage(o("endpoints-per-worker"), per_worker, "it shares out --mlperf-endpoint "
                         "among xdist workers, and no endpoint is given")
    if endpoints and backend == "hf" and config.getoption(o("backend").ini) is None:
        values["backend"] = "openai"
    return values
