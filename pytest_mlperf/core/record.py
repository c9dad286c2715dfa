"""The benchmark record: one typed, versioned account of one benchmark test.

Everything that reports on a benchmark (terminal, JUnit, pytest-html, result files, stored
baselines) reads a :class:`BenchmarkRecord`, never dict keys of its own. A record is made on
the process that ran the benchmark, written into the test report by :func:`attach` (plain JSON
in ``user_properties``, so it crosses xdist and lands in JUnit XML) and read back with
:func:`from_report`. ``to_json``/``from_json`` round-trip it exactly; ``schema_version`` says
which layout a stored record has (a record of a newer major layout is refused, not misread).

This module imports nothing heavy and nothing else of the package.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

#: Bumped when a field changes meaning or is removed; adding a field keeps the version.
SCHEMA_VERSION = 1
#: The user property the record rides in.
PROPERTY = "mlperf.record"


class RecordError(ValueError):
    """A stored record that cannot be read; the message says which field and why."""


@dataclass(frozen=True)
class Device:
    """The host the benchmark ran on (for served systems: the controller running loadgen)."""

    cpu: str = ""
    cpu_cores: int = 0
    gpus: tuple[str, ...] = ()
    driver: str | None = None
    cuda: str | None = None

    @property
    def gpu_count(self) -> int:
        return len(self.gpus)


@dataclass(frozen=True)
class System:
    """The system under test and the software around it."""

    backend: str
    model: str
    kind: str = "local"  # "local" folder or "served" at endpoints
    endpoints: tuple[str, ...] = ()
    engine: str | None = None
    engine_version: str | None = None
    engine_args: dict[str, Any] = field(default_factory=dict)
    device: Device = field(default_factory=Device)
    host: str = ""
    #: package -> version: torch, transformers, vllm, mlcommons-loadgen, pytest, pytest-mlperf
    versions: dict[str, str] = field(default_factory=dict)
    #: git commit of the project under test (the pytest rootdir), "+dirty" when it has changes
    commit: str | None = None
    #: what the backend's describe() said beyond the keys above
    extra: dict[str, Any] = field(default_factory=dict)
    #: the accelerator ids this process was given (``CUDA_VISIBLE_DEVICES``; an xdist
    #: worker's share under ``-n``), empty when nothing restricted them
    devices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Distribution:
    """Loadgen's statistics of one latency, in nanoseconds (None where it logged none)."""

    min: float | None = None
    mean: float | None = None
    max: float | None = None
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p97: float | None = None
    p99: float | None = None
    p999: float | None = None

    def ms(self, stat: str) -> float | None:
        value = getattr(self, stat)
        return None if value is None else value / 1e6

    @property
    def empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in dataclasses.fields(self))


@dataclass(frozen=True)
class Figures:
    """What loadgen measured in a performance run (all None in accuracy mode)."""

    samples_per_second: float | None = None
    tokens_per_second: float | None = None
    #: Server/Interactive: the rate loadgen scheduled (its target QPS as achieved)
    scheduled_samples_per_second: float | None = None
    query_count: int | None = None
    latency_ns: Distribution = field(default_factory=Distribution)
    ttft_ns: Distribution = field(default_factory=Distribution)
    tpot_ns: Distribution = field(default_factory=Distribution)


@dataclass(frozen=True)
class Run:
    """One loadgen run: where its logs are and what loadgen concluded."""

    outdir: str
    validity: str | None = None  # VALID / INVALID; None in accuracy mode or when no result
    invalid_reason: str | None = None
    #: result_min_duration_met, result_min_queries_met, result_perf_constraints_met, ...
    flags: dict[str, bool] = field(default_factory=dict)
    loadgen_errors: tuple[str, ...] = ()
    backend_error: str | None = None
    output_tokens: int = 0
    #: the effective TestSettings as the detail log states them (``effective_*``, prefix cut)
    settings: dict[str, Any] = field(default_factory=dict)
    loadgen_version: str | None = None


@dataclass(frozen=True)
class Target:
    """What the accuracy run was judged against, and the bounds that follow."""

    name: str
    ratio: float
    rouge1: float | None = None
    rouge2: float | None = None
    rougeL: float | None = None  # noqa: N815 - the metric's name
    rougeLsum: float | None = None  # noqa: N815 - the metric's name
    gen_len: int | None = None
    tokens_per_sample: float | None = None
    #: the sample count the figures are for
    samples: int | None = None


@dataclass(frozen=True)
class Accuracy:
    """Scores of an accuracy run (the reference's figures) and the target they met or missed."""

    rouge1: float | None = None
    rouge2: float | None = None
    rougeL: float | None = None  # noqa: N815 - the metric's name
    rougeLsum: float | None = None  # noqa: N815 - the metric's name
    gen_len: int | None = None
    gen_num: int | None = None
    gen_tok_len: int | None = None
    tokens_per_sample: float | None = None
    target: Target | None = None
    #: True only for an MLPerf target judged over its whole data set
    official: bool = False
    note: str | None = None

    @property
    def scored(self) -> bool:
        return self.rouge1 is not None

    def percent_of_target(self, key: str) -> float | None:
        """A ROUGE figure as a percentage of its target (99.0 = exactly at a 0.99 bound)."""
        value = getattr(self, key)
        target = getattr(self.target, key, None) if self.target is not None else None
        if value is None or not target:
            return None
        return 100.0 * value / target


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reasons: tuple[str, ...] = ()

    def explain(self) -> str:
        return "; ".join(self.reasons) if self.reasons else "passed"


@dataclass(frozen=True)
class DatasetInfo:
    path: str
    sha256: str = ""
    #: records used (the QSL total count)
    samples: int = 0
    #: records in the file
    total_records: int = 0


@dataclass(frozen=True)
class Timings:
    """Wall-clock seconds; ``started`` is ISO 8601 UTC."""

    started: str = ""
    engine_start_s: float = 0.0
    run_s: float = 0.0
    scoring_s: float = 0.0
    total_s: float = 0.0


@dataclass(frozen=True)
class Attempt:
    """One loadgen run among several behind one record (``--mlperf-repeat``, a peak search)."""

    outdir: str
    validity: str | None = None
    invalid_reason: str | None = None
    #: Server/Interactive: the target QPS this run asked loadgen for
    target_qps: float | None = None
    figures: Figures = field(default_factory=Figures)
    wall_s: float = 0.0
    backend_error: str | None = None


@dataclass(frozen=True)
class PeakSearch:
    """``--mlperf-find-peak``: the highest target QPS loadgen called VALID, and every run made."""

    #: the highest VALID target QPS (None: none was VALID)
    peak_qps: float | None
    #: the lowest INVALID target QPS above it (None: none was tried)
    invalid_qps: float | None
    tolerance: str
    seconds: float
    attempts: tuple[Attempt, ...] = ()
    #: why the search fell short of the tolerance (no VALID rate, no INVALID one, ...)
    note: str | None = None


@dataclass(frozen=True)
class Compliance:
    """A compliance test run beside the benchmark (TEST06: an audit run and its checks)."""

    test: str
    passed: bool
    #: check -> "True", "False" or "Skipped", as ``verify_accuracy.txt`` says them
    checks: dict[str, str] = field(default_factory=dict)
    #: what failed, per sample (first few)
    failures: tuple[str, ...] = ()
    samples: int = 0
    #: the audit run's folder: its loadgen logs and ``verify_accuracy.txt``
    outdir: str = ""


@dataclass(frozen=True)
class Conformance:
    """Is this an MLPerf result: the rules of its benchmark (``gate/rules.py``) the run breaks,
    judged before it started and from what the run showed (a served engine's cache hits).
    A record stored before the plugin judged this has ``checked`` False."""

    mlperf: bool = False
    reasons: tuple[str, ...] = ()
    checked: bool = False


@dataclass(frozen=True)
class GateResult:
    """One ``--mlperf-compare-fail`` gate against the stored run: both values, the bound, and
    whether today's value held it."""

    #: the figure gated (``tokens_per_second``, ``rouge1``, ...)
    name: str
    #: the bound as given (``5%``, ``0.5``)
    bound: str
    stored: float | None
    value: float | None
    #: ``value / stored`` (None when stored is 0 or either is missing)
    ratio: float | None
    passed: bool
    #: how the bound was applied: ``percent``, ``amount``, ``mann-whitney`` (beyond the bound
    #: and significant over the repeats), ``exact`` (outputs)
    method: str
    #: the worst value that still passes
    limit: float | None = None
    #: how a statistical gate decided (test, counts, p-value), else empty
    detail: str = ""


@dataclass(frozen=True)
class BenchmarkRecord:
    benchmark: str
    scenario: str  # vocabulary.Scenario value
    mode: str  # "performance" or "accuracy"
    profile: str
    system: System
    run: Run
    verdict: Verdict
    dataset: DatasetInfo = field(default_factory=lambda: DatasetInfo(path=""))
    figures: Figures = field(default_factory=Figures)
    accuracy: Accuracy | None = None
    timings: Timings = field(default_factory=Timings)
    nodeid: str = ""
    schema_version: int = SCHEMA_VERSION
    #: ``--mlperf-repeat``: every run; ``figures`` are their medians
    repeats: tuple[Attempt, ...] = ()
    #: ``--mlperf-find-peak``: the search; ``figures`` and ``run`` are the peak run's
    peak: PeakSearch | None = None
    #: ``--mlperf-compliance``: the audit runs and their checks
    compliance: tuple[Compliance, ...] = ()
    #: under xdist, the worker that ran the test (``gw0``, ...; "" without xdist)
    worker: str = ""
    #: a worker whose files the controller cannot see (another host, or another file system):
    #: ``host:folder`` its logs were written to there; they were copied back into ``run.outdir``
    #: (docs/scale.md)
    worker_outdir: str = ""
    #: issue 18: is this an MLPerf result, and why not
    conformance: Conformance = field(default_factory=Conformance)
    # -- the comparison with a stored session (``--mlperf-compare``/``--mlperf-compare-fail``)
    #: the stored session compared with (its file), None when none was
    compared_with: str | None = None
    #: every gate's result against that stored run
    gates: tuple[GateResult, ...] = ()
    # -- whether the figures can be trusted ------------------------------------------------
    #: False when they measure something other than the engine answering: its backend failed,
    #: the run was interrupted or timed out, or answers were failed or empty. Such a record
    #: shows no throughput or validity anywhere and is never a baseline (compare skips it).
    figures_valid: bool = True
    #: why not (None when they can be trusted)
    figures_invalid_reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (``json.dumps`` takes it as it is)."""
        return _to_json(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BenchmarkRecord:
        if not isinstance(data, dict):
            raise RecordError(f"a benchmark record is a JSON object, not {type(data).__name__}")
        version = data.get("schema_version")
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise RecordError(
                f"record schema_version {version!r} is not one this pytest-mlperf reads "
                f"(<= {SCHEMA_VERSION}); upgrade pytest-mlperf to read it"
            )
        return _from_json(cls, data, "record")

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True)

    @classmethod
    def loads(cls, text: str) -> BenchmarkRecord:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RecordError(f"not a JSON benchmark record: {exc}") from None
        return cls.from_json(data)

    def with_nodeid(self, nodeid: str) -> BenchmarkRecord:
        return dataclasses.replace(self, nodeid=nodeid)


# -- into and out of test reports ---------------------------------------------------------------

def attach(item: Any, record: BenchmarkRecord) -> None:
    """Put ``record`` on a test item: every later report of it (JUnit writes at teardown)
    carries it, as one JSON property plus flat ``mlperf.<figure>`` properties for JUnit."""
    item.user_properties.append((PROPERTY, record.dumps()))
    for name, value in flat_properties(record).items():
        item.user_properties.append((f"mlperf.{name}", value))


def from_report(report: Any) -> BenchmarkRecord | None:
    """The record a test report carries (on the controller, after xdist), else None."""
    for name, value in getattr(report, "user_properties", ()):
        if name == PROPERTY:
            record = BenchmarkRecord.loads(value)
            nodeid = getattr(report, "nodeid", "")
            return record.with_nodeid(nodeid) if nodeid and not record.nodeid else record
    return None


def flat_properties(record: BenchmarkRecord) -> dict[str, Any]:
    """The figures a CI system shows per test, as flat JUnit properties."""
    props: dict[str, Any] = {
        "verdict": "passed" if record.verdict.passed else "failed",
        "scenario": record.scenario, "mode": record.mode, "profile": record.profile,
        "backend": record.system.backend, "logs": record.run.outdir,
    }
    if not record.figures_valid:
        props["figures_valid"] = False
    if record.run.validity is not None:
        props["validity"] = record.run.validity
    figures = record.figures
    for name in ("tokens_per_second", "samples_per_second"):
        if getattr(figures, name) is not None:
            props[name] = getattr(figures, name)
    for name, dist in (("ttft", figures.ttft_ns), ("tpot", figures.tpot_ns),
                       ("latency", figures.latency_ns)):
        if dist.p99 is not None:
            props[f"{name}_p99_ms"] = round(dist.p99 / 1e6, 3)
    if record.accuracy is not None and record.accuracy.scored:
        for name in ("rouge1", "rouge2", "rougeL", "rougeLsum", "gen_len", "gen_num"):
            props[name] = getattr(record.accuracy, name)
    if record.repeats:
        props["repeats"] = len(record.repeats)
    if record.peak is not None and record.peak.peak_qps is not None:
        props["peak_qps"] = record.peak.peak_qps
    for check in record.compliance:
        props[check.test] = "passed" if check.passed else "failed"
    if record.conformance.checked:
        props["mlperf"] = record.conformance.mlperf
    return props


def records_from_reports(reports: Iterable[Any]) -> list[BenchmarkRecord]:
    return [r for r in map(from_report, reports) if r is not None]


# -- generic dataclass <-> JSON -----------------------------------------------------------------

def _to_json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    return value


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _from_json(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _from_json(args[0], value, where)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise RecordError(f"{where}: expected an object, got {type(value).__name__}")
        hints = _hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            if f.name in value:
                kwargs[f.name] = _from_json(hints[f.name], value[f.name], f"{where}.{f.name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise RecordError(f"{where}: the field '{f.name}' is missing")
        return tp(**kwargs)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise RecordError(f"{where}: expected a list, got {type(value).__name__}")
        (item_tp, *_rest) = typing.get_args(tp)
        return tuple(_from_json(item_tp, v, where) for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise RecordError(f"{where}: expected an object, got {type(value).__name__}")
        return dict(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecordError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int or tp is str or tp is bool:
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            raise RecordError(f"{where}: expected {tp.__name__}, got {value!r}")
        return value
    return value
