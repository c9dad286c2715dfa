"""What MLCommons' submission checker (v6.1, closed division) will reject in a results tree, and
why, worked out from the records and kept logs before the tree is written: the scenario set
per system type, the performance run's sample count, queries and duration, early stopping,
the TTFT/TPOT limits, the accuracy run's coverage and targets (the ROUGE figures, the gen_len
window), TEST06. ``--mlperf-submission-dir`` shows the list in the terminal summary and writes
it to ``<dir>/predicted-checker-errors.json``; ``tests/test_submission.py`` runs the checker
on the default job's tree and asserts its errors are exactly these.

The figures come from the checker's v6.1 configuration (its published rules); the table of
scenario sets is :mod:`.system_type`'s until the rules module publishes its own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pytest_mlperf.core.record import BenchmarkRecord
from pytest_mlperf.submission.system_type import missing_scenarios, scenario_set

FILE = "predicted-checker-errors.json"
#: the checker's minimum run time (TEST_DURATION_MS)
MIN_DURATION_MS = 600_000
#: gen_len (llama3.1) / tokens per sample (llama2): the checker's window around the reference
LENGTH_WINDOW = (0.9, 1.1)


@dataclass(frozen=True)
class Requirements:
    """One benchmark's numbers in the checker's v6.1 configuration."""

    #: performance-sample-count, dataset-size (= accuracy samples), Offline samples per query
    performance_sample_count: int
    dataset_size: int
    #: min-queries of the scenarios without early stopping
    min_queries: Mapping[str, int]
    #: ROUGE metric -> reference; the ratio the targets take of it
    rouge: Mapping[str, float]
    ratio: float
    #: ("gen_len" or "tokens_per_sample", reference), checked in LENGTH_WINDOW
    length: tuple[str, float]
    #: scenario -> (TTFT, TPOT) p99 limits in ns
    token_limits: Mapping[str, tuple[int, int]]
    test06: bool


_LLAMA2_ROUGE = {"rouge1": 44.4312, "rouge2": 22.0352, "rougeL": 28.6162}
REQUIREMENTS: Mapping[str, Requirements] = {
    "llama3.1-8b": Requirements(
        13368, 13368, {"SingleStream": 1024, "Server": 270336, "Offline": 1},
        {"rouge1": 38.7792, "rouge2": 15.9075, "rougeL": 24.4957, "rougeLsum": 35.793}, 0.99,
        ("gen_len", 8167644), {"Server": (2000_000_000, 100_000_000), "Interactive": (500_000_000, 30_000_000)},
        test06=True),
    "llama3.1-8b-edge": Requirements(
        5000, 5000, {"SingleStream": 1024, "Offline": 1},
        {"rouge1": 39.06, "rouge2": 16.1147, "rougeL": 24.6375, "rougeLsum": 36.124}, 0.99,
        ("gen_len", 3051113), {}, test06=False),
    "llama2-70b-99": Requirements(
        24576, 24576, {"SingleStream": 1024, "Server": 270336, "Offline": 1}, _LLAMA2_ROUGE, 0.99,
        ("tokens_per_sample", 294.45), {"Server": (2000_000_000, 200_000_000), "Interactive": (450_000_000, 40_000_000)},
        test06=False),
    "llama2-70b-99.9": Requirements(
        24576, 24576, {"SingleStream": 1024, "Server": 270336, "Offline": 1}, _LLAMA2_ROUGE, 0.999,
        ("tokens_per_sample", 294.45), {"Server": (2000_000_000, 200_000_000), "Interactive": (450_000_000, 40_000_000)},
        test06=True),
}
#: scenarios judged by early stopping, not a query count
EARLY_STOPPING = ("Server", "SingleStream", "MultiStream")


@dataclass(frozen=True)
class Rejection:
    benchmark: str
    scenario: str
    #: performance, accuracy or compliance: the checker's group that reports it
    group: str
    #: a stable name of the check (scenarios, performance_sample_count, min_query_count,
    #: samples_per_query, min_duration, early_stopping, token_latency, dataset_coverage,
    #: accuracy_target, accuracy_upper_limit, test06_missing, test06_failed; performance_missing,
    #: accuracy_missing: the checker crashes there)
    check: str
    why: str

    def line(self) -> str:
        return f"{self.benchmark} {self.scenario} {self.group}: {self.why}"


@dataclass(frozen=True)
class Folder:
    """One ``results/<system>/<benchmark>/<scenario>/`` as the tree will hold it."""

    benchmark: str
    scenario: str
    performance: BenchmarkRecord | None
    accuracy: BenchmarkRecord | None


def predict(folders: Sequence[Folder], kept: Mapping[str, Sequence[str]] | None = None) -> list[Rejection]:
    """The checker's rejections of ``folders``, in its order (per folder: performance,
    accuracy, compliance); ``kept``: benchmark -> scenario folders an earlier session left in
    the tree, which count for the scenario set (their own logs are not judged again)."""
    present: dict[str, list[str]] = {b: list(s) for b, s in (kept or {}).items()}
    for f in folders:
        present.setdefault(f.benchmark, []).append(f.scenario)
    out: list[Rejection] = []
    for f in folders:
        req = REQUIREMENTS.get(f.benchmark)
        if req is None:
            continue
        for mode, record in (("performance", f.performance), ("accuracy", f.accuracy)):
            if record is None:  # v6.1 stops with a TypeError on such a folder: nothing after it is checked
                out.append(Rejection(f.benchmark, f.scenario, mode, f"{mode}_missing",
                                     f"no {mode} run for this scenario: the checker needs {mode}/ in every "
                                     "scenario folder and stops with a traceback without it (run "
                                     "--mlperf-mode=both, the default, or add the missing run)"))
        if f.performance is not None:
            out += _performance(f, f.performance, req, present[f.benchmark])
        if f.accuracy is not None:
            out += _accuracy(f, f.accuracy, req)
        if f.performance is not None and req.test06:
            out += _test06(f, f.performance)
    return out


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _required(benchmark: str) -> str:
    found = scenario_set(benchmark)
    assert found is not None, benchmark
    parts = list(found.required) + ([" or ".join(found.one_of)] if found.one_of else [])
    return f"{' and '.join(parts)} ({found.system_type})"


def _settings(record: BenchmarkRecord) -> dict[str, Any]:
    return dict(record.run.settings)


def _profile(record: BenchmarkRecord) -> str:
    return (f" (the {record.profile} profile sizes runs for CI; --mlperf-profile=official runs the "
            "rules' sizes)") if record.profile != "official" else ""


def _performance(f: Folder, record: BenchmarkRecord, req: Requirements, scenarios: list[str]) -> list[Rejection]:
    def reject(check: str, why: str) -> None:
        out.append(Rejection(f.benchmark, f.scenario, "performance", check, why))

    out: list[Rejection] = []
    s = _settings(record)
    # the checker judges by loadgen's scenario: an Interactive run is a Server run of the
    # -interactive model (early stopping, no query count, the Server TTFT/TPOT limits)
    scenario = str(s.get("scenario") or f.scenario)
    missing = missing_scenarios(f.benchmark, scenarios)
    if missing:
        named = " and ".join(m.removeprefix("(one of) ") for m in missing)
        reject("scenarios", f"{f.benchmark} has no {named} result in this system; its system type requires "
                            f"{_required(f.benchmark)} (--mlperf-scenario selects them)")
    count = s.get("performance_sample_count")
    if isinstance(count, int) and count < req.performance_sample_count:
        reject("performance_sample_count", f"performance_sample_count {count} is below the benchmark's "
                                           f"{req.performance_sample_count}{_profile(record)}")
    early = _detail_value(record, "early_stopping_met")
    if scenario in EARLY_STOPPING and early is False:
        reject("early_stopping", "loadgen's early stopping was not met: the run's tail latency needs more "
                                 "queries than ran (a longer run, or a lower target QPS)")
    if scenario not in EARLY_STOPPING:
        need = req.min_queries.get(scenario)
        queries = s.get("min_query_count")
        per_query = s.get("samples_per_query")
        if need and isinstance(queries, int) and queries < need:
            reject("min_query_count", f"min_query_count {queries} is below the rules' {need}{_profile(record)}")
        elif scenario == "Offline" and isinstance(per_query, int) and per_query < req.performance_sample_count:
            reject("samples_per_query", f"the Offline query holds {per_query} samples; the rules ask "
                                        f"{req.performance_sample_count}{_profile(record)}")
    duration = s.get("min_duration_ms")
    if isinstance(duration, int) and duration < MIN_DURATION_MS:
        reject("min_duration", f"min_duration {duration / 1000:g} s is below the rules' 600 s{_profile(record)}")
    limits = req.token_limits.get(scenario)
    if limits is not None:
        ttft, tpot = record.figures.ttft_ns.p99, record.figures.tpot_ns.p99
        if ttft is not None and tpot is not None and not (ttft < limits[0] and tpot < limits[1]):
            reject("token_latency", f"p99 TTFT {ttft / 1e6:.0f} ms / TPOT {tpot / 1e6:.0f} ms are not both under "
                                    f"the checker's {scenario} limits {limits[0] / 1e6:.0f} / {limits[1] / 1e6:.0f} ms")
    return out


def _accuracy(f: Folder, record: BenchmarkRecord, req: Requirements) -> list[Rejection]:
    def reject(check: str, why: str) -> None:
        out.append(Rejection(f.benchmark, f.scenario, "accuracy", check, why))

    out: list[Rejection] = []
    covered = _settings(record).get("accuracy_sample_count", record.dataset.samples)
    if covered != req.dataset_size:
        reject("dataset_coverage", f"the accuracy run covers {covered} samples, not the data set's "
                                   f"{req.dataset_size}: not an MLPerf accuracy result (give the full "
                                   "data set, and no --mlperf-total-samples)")
    acc = record.accuracy
    if acc is None or not acc.scored:
        return out
    for metric, reference in req.rouge.items():
        value = getattr(acc, metric)
        if value is not None and float(f"{value:.4f}") < reference * req.ratio:  # as accuracy.txt holds it
            reject("accuracy_target", f"{metric} {value:.4f} is below the target {reference * req.ratio:.4f} "
                                      f"({req.ratio:g} x {reference})")
    name, reference = req.length
    value = getattr(acc, name)
    if value is not None:
        low, high = (reference * x for x in LENGTH_WINDOW)
        subset = " (the figure is over the whole data set; this run scored a subset)" \
            if covered != req.dataset_size else ""
        if value < low:
            reject("accuracy_target", f"{name} {value:g} is below the target {low:.0f} "
                                      f"({LENGTH_WINDOW[0]:g} x {_num(reference)}){subset}")
        elif value > high:
            reject("accuracy_upper_limit", f"{name} {value:g} is above the limit {high:.0f} "
                                           f"({LENGTH_WINDOW[1]:g} x {_num(reference)}){subset}")
    return out


def _test06(f: Folder, record: BenchmarkRecord) -> list[Rejection]:
    runs = [c for c in record.compliance if c.test == "TEST06"]
    if not runs:
        return [Rejection(f.benchmark, f.scenario, "compliance", "test06_missing",
                          f"no TEST06 audit run, which {f.benchmark} requires (--mlperf-compliance=TEST06)")]
    if not runs[-1].passed:
        return [Rejection(f.benchmark, f.scenario, "compliance", "test06_failed", "TEST06 failed")]
    return []


def _detail_value(record: BenchmarkRecord, key: str) -> Any:
    from pytest_mlperf.loadgen.logs import LogError, read_detail

    try:
        return read_detail(Path(record.run.outdir) / "mlperf_log_detail.txt").get(key)
    except LogError:
        return None


def write(root: Path, rejections: Sequence[Rejection]) -> Path:
    path = Path(root) / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(r) for r in rejections], indent=2) + "\n", encoding="utf-8")
    return path
