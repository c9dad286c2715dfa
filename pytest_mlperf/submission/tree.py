"""``--mlperf-submission-dir``: the MLPerf Inference results tree (v6.x layout) from the kept
logs of the session's runs, as ``submission_checker`` reads it::

    <dir>/closed/<submitter>/
        systems/<system>.json                     the --mlperf-system-desc file
        src/README.md                             what produced the results
        results/<system>/<benchmark>/<scenario>/
            performance/run_1/mlperf_log_{summary,detail}.txt
            accuracy/mlperf_log_{summary,detail}.txt, accuracy.txt, mlperf_log_accuracy.json
            measurements.json, user.conf, README.md

``<system>`` is the description file's name without ``.json``; its ``system_type`` says which
benchmarks it may hold (:mod:`.system_type`): a benchmark of another type is refused at
collection (and left out of a tree built from records alone), never written where the
checker would crash on it. The accuracy log is cut to its
first and last 4 KiB as MLCommons' ``truncate_accuracy_log.py`` does, after ``accuracy.txt``
took the hash of the whole log. A scenario folder is rebuilt whole on every session, so no file
of an older run stays behind. A quick-profile run is not a submission (its duration and query
counts are CI-sized): the tree is still written, and a note says so.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_mlperf.core.details import RunDetails
from pytest_mlperf.core.record import BenchmarkRecord
from pytest_mlperf.submission.accuracy_txt import ACCURACY_LOG, accuracy_text, sha256_file
from pytest_mlperf.submission.accuracy_txt import FILE as ACCURACY_TXT
from pytest_mlperf.submission.predict import Folder, Rejection, predict
from pytest_mlperf.submission.predict import write as write_prediction
from pytest_mlperf.submission.system_type import (
    SYSTEM_TYPES,
    explain_misplaced,
    misplaced,
    system_types,
)

DIVISION = "closed"
LOGS = ("mlperf_log_summary.txt", "mlperf_log_detail.txt")
#: MLCommons keeps this much of each end of a long accuracy log
VIEWABLE_BYTES = 4096


class SystemDescError(ValueError):
    """A system description the tree cannot use; the message names the file and the field."""


@dataclass
class Tree:
    root: Path
    scenario_dirs: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: what the official checker will reject, worked out before anything was written
    predicted: list[Rejection] = field(default_factory=list)


def system_id(system_desc: Path) -> str:
    return Path(system_desc).stem


def load_system_desc(path: Path, submitter: str) -> dict[str, Any]:
    """The description as the tree will hold it: ``submitter`` and ``division`` filled in
    when absent, refused when they contradict the options."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SystemDescError(f"{path}: cannot read it ({exc.strerror})") from None
    except ValueError as exc:
        raise SystemDescError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise SystemDescError(f"{path}: a system description is a JSON object, not {type(data).__name__}")
    given = data.get("submitter")
    if given and str(given).lower() != submitter.lower():
        raise SystemDescError(f"{path}: submitter {given!r} is not --mlperf-submitter {submitter!r}")
    division = data.get("division")
    if division and str(division).lower() != DIVISION:
        raise SystemDescError(f"{path}: division {division!r}; pytest-mlperf writes the '{DIVISION}' tree")
    if system_types(data) is None:
        got = f"is {data['system_type']!r}" if "system_type" in data else "is missing"
        raise SystemDescError(f"{path}: system_type {got}; set it to one of "
                              f"{', '.join(repr(t) for t in SYSTEM_TYPES if t != 'edge,datacenter')} "
                              "(the category each benchmark is submitted in)")
    return {**data, "submitter": given or submitter, "division": division or DIVISION}


def truncate_accuracy_log(source: Path, target: Path) -> None:
    """Copy ``source``, cut to its first and last 4 KiB when longer (MLCommons' cut)."""
    data = source.read_bytes()
    if len(data) > 2 * VIEWABLE_BYTES:
        data = data[:VIEWABLE_BYTES] + b"\n\n...\n\n" + data[-VIEWABLE_BYTES:]
    target.write_bytes(data)


def _latest(records: Iterable[BenchmarkRecord]) -> BenchmarkRecord | None:
    return max(records, key=lambda r: (r.timings.started, r.nodeid), default=None)


def _copy_logs(record: BenchmarkRecord, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in LOGS:
        shutil.copyfile(Path(record.run.outdir) / name, target / name)


def _weight_type(record: BenchmarkRecord) -> str:
    dtype = record.system.engine_args.get("dtype")
    if dtype:
        return str(dtype)
    try:
        config = json.loads((Path(record.system.model) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "as stored in the checkpoint"
    return str(config.get("torch_dtype") or config.get("dtype") or "as stored in the checkpoint")


def measurements(record: BenchmarkRecord) -> dict[str, str]:
    model = record.system.model
    return {
        "input_data_types": "int32",
        "retraining": "No",
        "starting_weights_filename": Path(model).name if record.system.kind == "local" else model,
        "weight_data_types": _weight_type(record),
        "weight_transformations": "No",
    }


def _readme(benchmark: str, scenario: str, system: str, runs: Sequence[BenchmarkRecord],
            reproduce: str, notes: Sequence[str]) -> str:
    first = runs[0]
    versions = first.system.versions
    lines = [
        f"# {benchmark} {scenario} on {system}", "",
        f"Produced by pytest-mlperf {versions.get('pytest-mlperf', '?')} (commit "
        f"{first.system.commit or 'unknown'}) with loadgen {versions.get('mlcommons-loadgen', '?')}, "
        f"the {first.system.backend} backend"
        + (f" ({first.system.engine} {first.system.engine_version or ''})".rstrip() + ")"
           if first.system.engine else "")
        + f", model {first.system.model}, {first.profile} profile, {first.dataset.samples} samples.",
        "", "Reproduce:", "", f"    {reproduce}", "", "Runs:", "",
    ]
    lines += [f"- {r.mode}: `{r.nodeid}`, {'passed' if r.verdict.passed else 'failed'}: "
              f"{r.verdict.explain()}" for r in runs]
    if notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def build_tree(records: Sequence[BenchmarkRecord], details: Mapping[str, RunDetails], *, root: Path,
               submitter: str, system_desc: Path, reproduce: str = "") -> Tree:
    desc = load_system_desc(system_desc, submitter)
    system = system_id(system_desc)
    org = Path(root) / DIVISION / submitter
    tree = Tree(root=Path(root))
    (org / "systems").mkdir(parents=True, exist_ok=True)
    (org / "systems" / f"{system}.json").write_text(json.dumps(desc, indent=2) + "\n", encoding="utf-8")
    (org / "src").mkdir(parents=True, exist_ok=True)
    (org / "src" / "README.md").write_text(
        "The results were produced by pytest-mlperf (https://pypi.org/project/pytest-mlperf/) "
        f"with:\n\n    {reproduce}\n", encoding="utf-8")

    # checked at collection too; records of a benchmark of another type stay out of the tree
    wrong = misplaced((r.benchmark for r in records), system_types(desc) or frozenset())
    if wrong:
        tree.warnings.append("left out of the tree: " + explain_misplaced(system_desc, desc["system_type"], wrong))
    groups: dict[tuple[str, str], list[BenchmarkRecord]] = {}
    for record in records:
        if record.benchmark not in wrong:
            groups.setdefault((record.benchmark, record.scenario), []).append(record)
    chosen: list[tuple[Folder, list[str]]] = []
    for (benchmark, scenario), group in sorted(groups.items()):
        notes: list[str] = []
        where = f"{benchmark} {scenario}"
        by_mode = {}
        for mode in ("performance", "accuracy"):
            runs = [r for r in group if r.mode == mode and (Path(r.run.outdir) / LOGS[1]).is_file()]
            if len(runs) > 1:
                notes.append(f"{where}: {len(runs)} {mode} runs; the tree holds the latest, {_latest(runs).nodeid}")  # type: ignore[union-attr]
            latest = _latest(runs)
            if latest is None:
                notes.append(f"{where}: no {mode} run with kept logs")
            else:
                by_mode[mode] = latest
        if by_mode:
            chosen.append((Folder(benchmark, scenario, by_mode.get("performance"), by_mode.get("accuracy")), notes))
    results = org / "results" / system
    kept = {b.name: [s.name for s in b.iterdir() if s.is_dir()] for b in results.iterdir() if b.is_dir()} \
        if results.is_dir() else {}
    tree.predicted = predict([f for f, _ in chosen], kept)
    write_prediction(root, tree.predicted)
    for entry, notes in chosen:
        benchmark, scenario, where = entry.benchmark, entry.scenario, f"{entry.benchmark} {entry.scenario}"
        folder = org / "results" / system / benchmark / scenario
        if folder.exists():
            shutil.rmtree(folder)
        perf, acc = entry.performance, entry.accuracy
        if perf is not None:
            _copy_logs(perf, folder / "performance" / "run_1")
        if acc is not None:
            notes += _write_accuracy(acc, folder / "accuracy")
        if perf is not None:
            notes += _copy_compliance(perf, folder)
        runs = [r for r in (perf, acc) if r is not None]
        if any(r.profile != "official" for r in runs):
            notes.append(f"{where}: {', '.join(sorted({r.profile for r in runs}))}-profile runs are CI-sized, "
                         "not a submission: the checker rejects their duration (min_duration < 600 s) "
                         "and query counts; run --mlperf-profile=official for one")
        notes += [f"{where}: the {r.mode} test failed: {r.verdict.explain()}" for r in runs if not r.verdict.passed]
        main = perf or acc
        run_details = details.get(main.nodeid) if main is not None else None  # type: ignore[union-attr]
        user_conf = run_details.user_conf if run_details is not None else ""
        (folder / "user.conf").write_text(user_conf or "# pytest-mlperf: no settings beyond mlperf.conf\n",
                                          encoding="utf-8")
        (folder / "measurements.json").write_text(json.dumps(measurements(runs[0]), indent=2) + "\n",
                                                  encoding="utf-8")
        (folder / "README.md").write_text(_readme(benchmark, scenario, system, runs, reproduce, notes),
                                          encoding="utf-8")
        tree.scenario_dirs.append(folder)
        tree.warnings += notes
    return tree


def _copy_compliance(record: BenchmarkRecord, folder: Path) -> list[str]:
    """The compliance runs of a performance test (``--mlperf-compliance``), where the
    checker looks for them; a note when the session ran none."""
    runs = getattr(record, "compliance", ())
    if not runs:
        return [f"{record.benchmark} {record.scenario}: no compliance run (TEST06); "
                "run --mlperf-compliance=TEST06 for one, the checker requires it"]
    from pytest_mlperf.submission.compliance import submission_files

    for result in runs:
        for rel, source in submission_files(result).items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, folder / rel)
    return []


def _write_accuracy(record: BenchmarkRecord, target: Path) -> list[str]:
    _copy_logs(record, target)
    source = Path(record.run.outdir)
    log = source / ACCURACY_LOG
    if not log.is_file():
        return [f"{record.benchmark} {record.scenario}: the accuracy run kept no {ACCURACY_LOG}"]
    kept = source / ACCURACY_TXT
    text = kept.read_text(encoding="utf-8") if kept.is_file() else accuracy_text(record, sha256_file(log))
    if text is None:
        return [f"{record.benchmark} {record.scenario}: the accuracy run was not scored: no {ACCURACY_TXT}"]
    (target / ACCURACY_TXT).write_text(text, encoding="utf-8")
    truncate_accuracy_log(log, target / ACCURACY_LOG)
    return []
