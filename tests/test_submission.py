"""accuracy.txt, the run's user.conf, and the MLPerf results tree, checked by MLCommons' own
submission checker (../shared/oracles/mlperf-submission-checker) on a tree the plugin wrote."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_mlperf.core.record import Accuracy, BenchmarkRecord, Run, System, Target, Verdict
from pytest_mlperf.options import OPTIONS
from pytest_mlperf.submission.accuracy_txt import write_accuracy_txt
from pytest_mlperf.submission.tree import VIEWABLE_BYTES, truncate_accuracy_log
from tests.fake_world import CONFTEST
from tests.shared import public_logs_dir, shared_dir
from tests.xdist_once import once

CHECKER = shared_dir() / "oracles" / "mlperf-submission-checker"
REDHAT_ACCURACY = (public_logs_dir() / "ntuhpc__inference_results_v5.1" / "closed" / "RedHat" / "results"
                   / "XE8640_4xH100_vLLM" / "llama3.1-8b" / "Offline" / "accuracy" / "accuracy.txt")


def _accuracy_record(outdir: Path, benchmark: str = "llama3.1-8b") -> BenchmarkRecord:
    return BenchmarkRecord(
        benchmark=benchmark, scenario="Offline", mode="accuracy", profile="official",
        system=System(backend="vllm", model="m"), run=Run(outdir=str(outdir)), verdict=Verdict(True),
        accuracy=Accuracy(rouge1=38.7898, rouge2=15.9437, rougeL=24.5735, rougeLsum=35.8053,
                          gen_len=8163079, gen_num=13368, gen_tok_len=1700000,
                          target=Target(name="llama3.1-8b", ratio=0.99)),
    )


def test_accuracy_txt_is_what_the_evaluation_writes(tmp_path: Path) -> None:
    log = tmp_path / "mlperf_log_accuracy.json"
    log.write_text('[{"seq_id": 0, "qsl_idx": 0, "data": "0100000002000000"}]\n')
    path = write_accuracy_txt(_accuracy_record(tmp_path))
    assert path == tmp_path / "accuracy.txt"
    digest = hashlib.sha256(log.read_bytes()).hexdigest()
    text = path.read_text()
    assert text == ("\nResults\n\n{'rouge1': '38.7898', 'rouge2': '15.9437', 'rougeL': '24.5735', "
                    f"'rougeLsum': '35.8053', 'gen_len': 8163079, 'gen_num': 13368}}\n\nhash={digest}\n")
    if REDHAT_ACCURACY.is_file():  # a real submission's file: same keys, order and value types
        real = next(line for line in REDHAT_ACCURACY.read_text().splitlines() if line.startswith("{"))
        ours = next(line for line in text.splitlines() if line.startswith("{"))
        real_dict, our_dict = ast.literal_eval(real), ast.literal_eval(ours)
        assert list(real_dict) == list(our_dict)
        assert [type(v) for v in real_dict.values()] == [type(v) for v in our_dict.values()]
        assert real_dict == our_dict  # the record holds RedHat's published figures
        assert re.search(r"^hash=[0-9a-f]{64}$", REDHAT_ACCURACY.read_text(), re.M)


def test_llama2_accuracy_txt_has_numbers_and_tokens_per_sample(tmp_path: Path) -> None:
    (tmp_path / "mlperf_log_accuracy.json").write_text("[]")
    text = write_accuracy_txt(_accuracy_record(tmp_path, "llama2-70b-99")).read_text()
    line = ast.literal_eval(text.splitlines()[3])
    assert line["rouge1"] == 38.7898 and line["tokens_per_sample"] == round(1700000 / 13368, 1)


def test_no_accuracy_txt_without_scores(tmp_path: Path) -> None:
    (tmp_path / "mlperf_log_accuracy.json").write_text("[]")
    record = _accuracy_record(tmp_path)
    unscored = BenchmarkRecord(**{**record.__dict__, "accuracy": Accuracy()})
    assert write_accuracy_txt(unscored) is None
    assert not (tmp_path / "accuracy.txt").exists()


def test_accuracy_log_is_cut_as_mlcommons_cuts_it(tmp_path: Path) -> None:
    source, target = tmp_path / "full.json", tmp_path / "cut.json"
    body = "".join(f'{{"seq_id": {i}, "qsl_idx": {i}, "data": "{i:08x}"}},\n' for i in range(2000))
    source.write_text("[\n" + body + "]\n")
    truncate_accuracy_log(source, target)
    data, cut = source.read_bytes(), target.read_bytes()
    assert cut == data[:VIEWABLE_BYTES] + b"\n\n...\n\n" + data[-VIEWABLE_BYTES:]
    assert len(cut) < 10 * 1024  # the checker's limit
    small = tmp_path / "small.json"
    small.write_text("[]")
    truncate_accuracy_log(small, target)
    assert target.read_text() == "[]"


@pytest.mark.parametrize("scenario", ["Offline", "Server", "SingleStream", "Interactive"])
def test_user_conf_reproduces_the_run_through_loadgens_parser(tmp_path: Path, scenario: str) -> None:
    """Every field the run changed over mlperf.conf comes back when loadgen reads the
    user.conf the plugin wrote for it (the fields user.conf cannot set are comments)."""
    from pytest_mlperf.core.vocabulary import Mode, Profile, Scenario
    from pytest_mlperf.loadgen.settings import SettingsPlan, conf_values
    from pytest_mlperf.submission.user_conf import render, settings_diff

    cli = {"Offline": {"offline_expected_qps": 12.5}, "SingleStream": {"single_stream_expected_latency_ns": 3_000_000},
           "Server": {"server_target_qps": 3.5, "server_target_latency_ns": 42_000_000},
           "Interactive": {"server_target_qps": 2.0}}[scenario]
    plan = SettingsPlan(benchmark="llama3.1-8b", scenario=Scenario(scenario), profile=Profile.QUICK,
                        total_count=24, performance_count=24, marker_overrides={"max_duration_ms": 90_000},
                        cli_overrides=cli)
    diff = settings_diff(plan, Mode.PERFORMANCE)
    assert {"min_duration_ms", "min_query_count", "max_duration_ms", *cli} <= set(diff)
    path = tmp_path / "user.conf"
    path.write_text(render(plan.model_key, plan.scenario.loadgen_name, diff))
    read_back = conf_values(plan.model_key, plan.scenario.loadgen_name, {}, path)
    for name, value in diff.items():
        if f"# {name} =" in path.read_text():
            continue
        assert read_back[name] == pytest.approx(value), (name, path.read_text())


# -- the tree, and the official checker on it --------------------------------------------------

#: 13,368 records (the data set size the checker requires) of 12 words of 49 characters: the
#: copy backend's summaries then make gen_len ~8.3M, inside llama3.1-8b's 0.9x..1.1x of 8,167,644.
LONG_WORDS = '''

LONG = [w if i < 3 else w + "x" * (49 - len(w)) for i, w in enumerate(WORDS)]


class LongWordTokenizer(WordTokenizer):
    def batch_decode(self, batch, skip_special_tokens=True):
        return [" ".join(LONG[i] for i in ids if i > 2) for ids in batch]


@pytest.fixture(scope="session")
def mlperf_tokenizer():
    return LongWordTokenizer()
'''

#: Server: the accuracy run's 13,368 queries at 1,500/s; the performance run only 3 s long
SERVER_CONF = "llama3_1-8b.Server.target_qps = 1500\nllama3_1-8b.Server.min_duration = 3000\n"

BENCH = '''
import pytest

pytestmark = pytest.mark.mlperf(benchmark="llama3.1-8b", scenarios=("Offline", "Server"),
                                baseline="llama3.1-8b")


def test_llama(mlperf_result):
    pass
'''

SYSTEM = {
    "division": "closed", "submitter": "Testorg", "status": "available", "system_name": "Test box (CPU)",
    "number_of_nodes": "1", "host_processor_model_name": "AMD EPYC", "host_processors_per_node": "1",
    "host_processor_core_count": "2", "host_memory_capacity": "24 GB", "host_storage_capacity": "100 GB",
    "host_storage_type": "SSD", "accelerators_per_node": "0", "accelerator_model_name": "N/A",
    "accelerator_memory_capacity": "N/A", "framework": "pytest-mlperf copy backend", "operating_system": "Debian 12",
    "system_type": "datacenter", "other_software_stack": "python 3.11", "host_processor_frequency": "",
    "host_processor_caches": "", "host_memory_configuration": "1x 24 GB", "host_processor_interconnect": "",
    "host_networking": "none", "host_networking_topology": "none", "accelerator_frequency": "",
    "accelerator_host_interconnect": "N/A", "accelerator_interconnect": "N/A",
    "accelerator_interconnect_topology": "", "accelerator_memory_configuration": "N/A",
    "accelerator_on-chip_memories": "", "cooling": "air", "hw_notes": "", "sw_notes": "",
    "host_network_card_count": "0", "system_type_detail": "test double",
}


def _long_dataset(path: Path, n: int = 13368) -> Path:
    namespace: dict = {}
    exec(CONFTEST + LONG_WORDS.replace("@pytest.fixture", "# @pytest.fixture"), namespace)
    words, long = namespace["WORDS"], namespace["LONG"]
    records = []
    for i in range(n):
        ids = [3 + (i * 7 + k * 3) % 190 for k in range(12)]
        records.append({"instruction": {"llama": "Summarize:\n{input}\n\nSummary:"},
                        "input": " ".join(words[t] for t in ids), "tok_input": [1, *ids],
                        "output": " ".join(long[t] for t in ids)})
    path.write_text(json.dumps(records))
    return path


def run_checker(root: Path, submitter: str, workdir: Path, *skips: str) -> tuple[int, list[str]]:
    env = {**os.environ, "PYTHONPATH": str(CHECKER)}
    proc = subprocess.run(
        [sys.executable, "-m", "submission_checker.main", "--input", str(root), "--version", "v6.1",
         "--submitter", submitter, "--csv", str(workdir / "summary.csv"), *skips],
        capture_output=True, text=True, cwd=workdir, env=env, timeout=600, check=False,
    )
    lines = (proc.stdout + proc.stderr).splitlines()
    return proc.returncode, lines


def _errors(lines: list[str]) -> list[str]:
    """The checker's ERROR lines (``[time file:line ERROR] message``), messages only."""
    return [line.split(" ERROR] ", 1)[1] for line in lines if " ERROR] " in line]


#: TEST06 audit runs (--mlperf-compliance), where the plugin has them: the v6.1 checker
#: requires TEST06 for llama3.1-8b and ignores its own --skip_compliance
HAS_TEST06 = any(o.name == "compliance" for o in OPTIONS)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One session: Offline and Server, performance and accuracy, over 13,368 samples, with
    the submission tree written at its end (once per run, also under xdist)."""
    if not (CHECKER / "submission_checker" / "main.py").is_file():
        pytest.skip(f"the official submission checker is not in {CHECKER}")
    pytest.importorskip("yaml")

    def make(workdir: Path) -> dict:
        (workdir / "conftest.py").write_text(CONFTEST + LONG_WORDS)
        (workdir / "test_llama.py").write_text(BENCH)
        (workdir / "testbox.json").write_text(json.dumps(SYSTEM))
        (workdir / "server.conf").write_text(SERVER_CONF)
        data = _long_dataset(workdir / "data.json")
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
             "--mlperf-backend=copy", "--mlperf-scenario=Offline,Server", f"--mlperf-dataset={data}",
             "--mlperf-submission-dir=sub", "--mlperf-submitter=Testorg", "--mlperf-system-desc=testbox.json",
             "--mlperf-user-conf=server.conf",
             "--mlperf-progress-interval=0", *(["--mlperf-compliance=TEST06"] if HAS_TEST06 else [])],
            capture_output=True, text=True, cwd=workdir, timeout=900, check=False,
        )
        return {"workdir": str(workdir), "returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}

    made = once(tmp_path_factory, "submission", make)
    workdir = Path(made["workdir"])
    return {**made, "workdir": workdir, "root": workdir / "sub"}


@pytest.mark.heavy
def test_tree_holds_the_layout_checker_reads(tree: dict) -> None:
    assert tree["returncode"] == 0, tree["stdout"][-3000:] + tree["stderr"][-2000:]
    assert "4 passed" in tree["stdout"]
    # The plugin says itself that a quick-profile tree is no submission.
    assert "quick-profile runs are CI-sized, not a submission" in tree["stdout"]
    scenario = tree["root"] / "closed" / "Testorg" / "results" / "testbox" / "llama3.1-8b" / "Offline"
    files = sorted(str(p.relative_to(scenario)) for p in scenario.rglob("*") if p.is_file())
    test06 = ["TEST06/accuracy/mlperf_log_accuracy.json", "TEST06/verify_accuracy.txt"] if HAS_TEST06 else []
    assert files == ["README.md", *test06, "accuracy/accuracy.txt", "accuracy/mlperf_log_accuracy.json",
                     "accuracy/mlperf_log_detail.txt", "accuracy/mlperf_log_summary.txt", "measurements.json",
                     "performance/run_1/mlperf_log_detail.txt", "performance/run_1/mlperf_log_summary.txt",
                     "user.conf"]
    assert "llama3_1-8b.Offline.min_duration = 0" in (scenario / "user.conf").read_text()
    server_conf = (scenario.parent / "Server" / "user.conf").read_text()
    assert "llama3_1-8b.Server.target_qps = 1500" in server_conf and "llama3_1-8b.Server.min_duration = 3000" in server_conf
    system = json.loads((tree["root"] / "closed" / "Testorg" / "systems" / "testbox.json").read_text())
    assert system == SYSTEM
    # accuracy.txt's hash is of the whole log the run kept, not of the truncated copy
    kept = next((tree["workdir"] / "mlperf-results").glob("*Offline-accuracy*/run_*/accuracy/mlperf_log_accuracy.json"))
    digest = hashlib.sha256(kept.read_bytes()).hexdigest()
    assert (scenario / "accuracy" / "accuracy.txt").read_text().endswith(f"hash={digest}\n")
    assert (scenario / "accuracy" / "mlperf_log_accuracy.json").stat().st_size < 10 * 1024 < kept.stat().st_size


@pytest.mark.heavy
def test_official_checker_finds_no_error_but_the_quick_duration(tree: dict) -> None:
    """No --skip-* flag: the data set size, the accuracy figures and hash, the measurements,
    the system description and TEST06 are all checked (v6.1 ignores --skip_compliance anyway).
    Expected: each performance run is flagged for its quick-profile duration, and nothing else."""
    code, lines = run_checker(tree["root"], "Testorg", tree["workdir"])
    errors = _errors(lines)
    duration = [e for e in errors if "Test duration less than 600s in user config" in e]
    assert len(duration) == 2, "\n".join(lines[-80:])
    expected = ["Some performance checks Checks failed", "NoResults", "SUMMARY: submission has errors"]
    if not HAS_TEST06:
        expected += ["Missing TEST06", "Missing accuracy file in compliance dir", "compliance check",
                     "Running accuracy_check in ComplianceCheck"]
    rest = [e for e in errors if e not in duration and not any(x in e for x in expected)]
    assert rest == [], "\n".join(rest)
    found, unknown = checker_rejections(lines)
    predicted = json.loads((tree["root"] / "predicted-checker-errors.json").read_text())
    assert unknown == [] and sorted(found) == sorted((p["benchmark"], p["scenario"], p["check"]) for p in predicted)
    text = "\n".join(lines)
    # the checkers' own names: "accuracy checks", ..., "compliance check"
    for name in ("accuracy checks", "system checks", "measurement checks", *(["compliance check"] if HAS_TEST06 else [])):
        assert text.count(f"All {name} checks passed for") == 2, name
    assert code == 1  # the duration: a quick run is no submission


@pytest.mark.heavy
def test_official_checker_catches_a_broken_tree(tree: dict, tmp_path: Path) -> None:
    """The check above can fail: an accuracy.txt without its hash line is an error."""
    import shutil

    root = tmp_path / "sub"
    shutil.copytree(tree["root"], root)
    acc = root / "closed" / "Testorg" / "results" / "testbox" / "llama3.1-8b" / "Server" / "accuracy" / "accuracy.txt"
    acc.write_text("\n".join(x for x in acc.read_text().splitlines() if not x.startswith("hash=")))
    _, lines = run_checker(root, "Testorg", tmp_path)
    assert any("not hash value for accuracy.txt" in e for e in _errors(lines)), "\n".join(lines[-40:])


def test_bad_system_description_stops_the_session(pytester: pytest.Pytester) -> None:
    (pytester.path / "box.json").write_text(json.dumps({"submitter": "Someone else"}))
    result = pytester.runpytest("--mlperf-submission-dir=sub", "--mlperf-submitter=Testorg",
                                "--mlperf-system-desc=box.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--mlperf-system-desc: *box.json: submitter 'Someone else' is not --mlperf-submitter 'Testorg'*"])
    result = pytester.runpytest("--mlperf-submission-dir=sub", "--mlperf-submitter=Testorg")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--mlperf-submission-dir*the submission tree needs --mlperf-system-desc*"])


# -- the system type: datacenter and edge benchmarks never share a system --------------------

TWO_BENCHMARKS = {
    "test_dc": "import pytest\npytestmark = pytest.mark.mlperf(benchmark='llama3.1-8b', scenarios=('Offline',))\n"
               "def test_dc(mlperf_result): pass\n",
    "test_edge": "import pytest\npytestmark = pytest.mark.mlperf(benchmark='llama3.1-8b-edge', scenarios=('Offline',))\n"
                 "def test_edge(mlperf_result): pass\n",
}


@pytest.mark.parametrize(("system_type", "args", "refused"), [
    ("datacenter", (), "llama3.1-8b-edge (an edge benchmark)"),
    ("edge", (), "llama3.1-8b (a datacenter benchmark)"),
    ("datacenter", ("-k", "not edge"), None),
    ("datacenter,edge", (), None),
    ("Edge, Datacenter", (), None),
])
def test_a_benchmark_of_another_system_type_is_refused_before_anything_runs(
        pytester: pytest.Pytester, system_type: str, args: tuple, refused: str | None) -> None:
    """MLCommons' checker crashes (TypeError in check_scenarios) on an edge benchmark under a
    datacenter system: the plugin refuses the session at collection, naming the fix."""
    pytester.makepyfile(**TWO_BENCHMARKS)
    (pytester.path / "box.json").write_text(json.dumps({**SYSTEM, "system_type": system_type}))
    result = pytester.runpytest("--mlperf-submission-dir=sub", "--mlperf-submitter=Testorg",
                                "--mlperf-system-desc=box.json", "--collect-only", "-q", *args)
    if refused is None:
        assert result.ret == pytest.ExitCode.OK, result.stderr.str()
        return
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--mlperf-system-desc: *box.json: system_type '{system_type}' cannot hold "
                                 f"{refused}*\"system_type\": \"datacenter,edge\"*deselect*"])


@pytest.mark.parametrize(("system_type", "shown"), [(None, "is missing"), ("cloud", "is 'cloud'"), (3, "is 3")])
def test_a_system_type_the_checker_does_not_take_is_refused(pytester: pytest.Pytester, system_type: object,
                                                            shown: str) -> None:
    desc = {k: v for k, v in SYSTEM.items() if k != "system_type"}
    if system_type is not None:
        desc["system_type"] = system_type
    (pytester.path / "box.json").write_text(json.dumps(desc))
    result = pytester.runpytest("--mlperf-submission-dir=sub", "--mlperf-submitter=Testorg",
                                "--mlperf-system-desc=box.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*box.json: system_type {shown}; set it to one of 'datacenter', 'edge', "
                                 "'datacenter,edge'*"])


def test_a_tree_from_records_leaves_out_a_benchmark_of_another_type(tmp_path: Path) -> None:
    from pytest_mlperf.submission.tree import build_tree

    (tmp_path / "box.json").write_text(json.dumps(SYSTEM))
    edge = BenchmarkRecord(benchmark="llama3.1-8b-edge", scenario="Offline", mode="performance",
                           profile="quick", system=System(backend="hf", model="m"), run=Run(outdir=str(tmp_path)),
                           verdict=Verdict(True))
    tree = build_tree([edge], {}, root=tmp_path / "sub", submitter="Testorg", system_desc=tmp_path / "box.json")
    assert tree.scenario_dirs == []
    assert not (tmp_path / "sub" / "closed" / "Testorg" / "results").exists()
    assert any(w.startswith("left out of the tree: ") and "llama3.1-8b-edge (an edge benchmark)" in w
               for w in tree.warnings)


# -- what the checker will reject, predicted before the tree is written ----------------------

REPO = Path(__file__).resolve().parents[1]
#: the checker's lines that follow from another error, or frame it, not a cause of their own
CONSEQUENCES = ("Checks failed for", "Execution occurred in running check", "NoResults ",
                "SUMMARY: submission has errors", "Missing accuracy file in compliance dir")
#: a checker message -> the plugin's name of the check (submission/predict.py)
CHECKS = {
    "does not have all required scenarios": "scenarios",
    "performance_sample_count, found": "performance_sample_count",
    "Required minimum samples per query not met": "samples_per_query",
    "Required minimum Query Count not met": "min_query_count",
    "Test duration less than 600s": "min_duration",
    "Early stopping condition was not met": "early_stopping",
    "Failed extra check for TTFT and TPOT": "token_latency",
    "accurcy run does not cover all dataset": "dataset_coverage",
    "accuracy not met: expected=": "accuracy_target",
    "accuracy not met: upper limit=": "accuracy_upper_limit",
    "Missing TEST06 in compliance dir": "test06_missing",
}
_WHERE = re.compile(r"results/[^/\s]+/(?P<benchmark>[^/\s]+)/(?P<scenario>[^/\s]+)/")


def checker_rejections(lines: list[str]) -> tuple[list[tuple[str, str, str]], list[str]]:
    """The checker's errors (and the warnings that fail a check: a missed accuracy target) as
    (benchmark, scenario, check), and the lines no entry of CHECKS names."""
    found, unknown = [], []
    where = ("?", "?")
    for line in lines:
        m = _WHERE.search(line)
        if m:  # a line without a path belongs to the check that started last
            where = (m["benchmark"], m["scenario"])
        level = next((lv for lv in (" ERROR] ", " WARNING] ") if lv in line), None)
        if level is None:
            continue
        message = line.split(level, 1)[1]
        check = next((c for text, c in CHECKS.items() if text in message), None)
        if check is not None:
            found.append((*where, check))
        elif level == " ERROR] " and not any(c in message for c in CONSEQUENCES):
            unknown.append(message)
    return found, unknown


@pytest.fixture(scope="module")
def default_job_tree(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """CI's main job (benchmarks/, embedded model, hf backend, Offline, both benchmarks) with
    --mlperf-submission-dir, on its first 24 samples: the smallest run that makes that tree."""
    if not (CHECKER / "submission_checker" / "main.py").is_file():
        pytest.skip(f"the official submission checker is not in {CHECKER}")
    pytest.importorskip("yaml")
    pytest.importorskip("transformers")

    def make(workdir: Path) -> dict:
        (workdir / "box.json").write_text(json.dumps({**SYSTEM, "system_type": "datacenter,edge"}))
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", str(REPO / "benchmarks"), "-p", "no:cacheprovider", "-q",
             f"--rootdir={workdir}", "--mlperf-scenario=Offline", "--mlperf-total-samples=24",
             f"--mlperf-output={workdir / 'mlperf-results'}", "--mlperf-progress-interval=0",
             "--mlperf-submission-dir=sub", "--mlperf-submitter=Testorg", "--mlperf-system-desc=box.json"],
            capture_output=True, text=True, cwd=workdir, timeout=900, check=False,
        )
        return {"workdir": str(workdir), "returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}

    made = once(tmp_path_factory, "default-job-tree", make)
    assert made["returncode"] == 0, made["stdout"][-3000:] + made["stderr"][-2000:]
    return {**made, "workdir": Path(made["workdir"])}


@pytest.mark.heavy
def test_the_checker_rejects_exactly_what_the_plugin_predicted(default_job_tree: dict) -> None:
    """No --skip-* flag. The plugin's prediction (terminal and predicted-checker-errors.json)
    is the checker's error list: no crash, nothing unpredicted, nothing predicted in vain."""
    workdir = default_job_tree["workdir"]
    predicted = json.loads((workdir / "sub" / "predicted-checker-errors.json").read_text())
    code, lines = run_checker(workdir / "sub", "Testorg", workdir)
    assert not any("Traceback" in line for line in lines), "\n".join(lines[-40:])
    found, unknown = checker_rejections(lines)
    assert unknown == [], "\n".join(unknown)
    assert sorted(found) == sorted((p["benchmark"], p["scenario"], p["check"]) for p in predicted), "\n".join(lines)
    assert code == 1
    # what the default job's tree is refused for, each said with its cause
    checks = {(p["benchmark"], p["check"]) for p in predicted}
    assert {("llama3.1-8b", "scenarios"), ("llama3.1-8b-edge", "scenarios"), ("llama3.1-8b", "test06_missing"),
            ("llama3.1-8b", "dataset_coverage"), ("llama3.1-8b-edge", "performance_sample_count"),
            ("llama3.1-8b", "min_duration"), ("llama3.1-8b", "accuracy_target")} <= checks
    why = {(p["benchmark"], p["check"]): p["why"] for p in predicted}
    assert why[("llama3.1-8b", "scenarios")].startswith(
        "llama3.1-8b has no Interactive or Server result in this system; its system type requires Offline and "
        "Interactive or Server (datacenter)")
    assert why[("llama3.1-8b-edge", "scenarios")].startswith("llama3.1-8b-edge has no SingleStream result")
    assert why[("llama3.1-8b", "accuracy_target")].startswith("gen_len ") and "below the target 7350880 (0.9 x 8167644)" in why[("llama3.1-8b", "accuracy_target")]
    assert "covers 24 samples, not the data set's 13368" in why[("llama3.1-8b", "dataset_coverage")]
    stdout = default_job_tree["stdout"]
    assert f"the official submission checker will reject ({len(predicted)}, predicted;" in stdout
    assert "  llama3.1-8b-edge Offline performance: performance_sample_count 24 is below the benchmark's 5000" in stdout


@pytest.mark.heavy
def test_the_prediction_fails_when_the_checker_finds_more(default_job_tree: dict, tmp_path: Path) -> None:
    """The comparison above can fail: an accuracy.txt cut to no hash is an error nobody predicted."""
    import shutil

    root = tmp_path / "sub"
    shutil.copytree(default_job_tree["workdir"] / "sub", root)
    acc = root / "closed" / "Testorg" / "results" / "box" / "llama3.1-8b" / "Offline" / "accuracy" / "accuracy.txt"
    acc.write_text("\n".join(x for x in acc.read_text().splitlines() if not x.startswith("hash=")))
    _, lines = run_checker(root, "Testorg", tmp_path)
    _, unknown = checker_rejections(lines)
    assert any("not hash value for accuracy.txt" in u for u in unknown)


def _official(tmp_path: Path, scenario: str, mode: str, benchmark: str = "llama3.1-8b", **change: object) -> BenchmarkRecord:
    """A record of an official run of ``benchmark`` the checker accepts; ``change`` alters one
    effective setting (``settings__name``), a figure (``ttft``/``tpot`` in ms), the accuracy
    figures (``accuracy``), TEST06 (``test06``: None, False) or early stopping (``early_stopping_met``)."""
    from pytest_mlperf.core.record import Compliance, Distribution, Figures
    from pytest_mlperf.submission.predict import REQUIREMENTS

    req = REQUIREMENTS[benchmark]
    outdir = tmp_path / f"{benchmark}-{scenario}-{mode}"
    outdir.mkdir()
    met = json.dumps({"key": "early_stopping_met", "value": change.pop("early_stopping_met", True)})
    (outdir / "mlperf_log_detail.txt").write_text(f":::MLLOG {met}\n")
    settings = {"performance_sample_count": req.performance_sample_count, "min_query_count": req.min_queries.get(scenario, 1),
                "samples_per_query": req.performance_sample_count if scenario == "Offline" else 1,
                "min_duration_ms": 600_000, "accuracy_sample_count": req.dataset_size}
    settings.update({k.removeprefix("settings__"): v for k, v in change.items() if k.startswith("settings__")})
    limits = req.token_limits.get(scenario, (10**10, 10**10))
    figures = Figures(ttft_ns=Distribution(p99=change.get("ttft", limits[0] / 2e6) * 1e6),
                      tpot_ns=Distribution(p99=change.get("tpot", limits[1] / 2e6) * 1e6))
    scores = {m: v * req.ratio + 0.01 for m, v in req.rouge.items()} | {req.length[0]: req.length[1]}
    scores.update(change.get("accuracy", {}))
    test06 = change.get("test06", True)
    return BenchmarkRecord(
        benchmark=benchmark, scenario=scenario, mode=mode, profile="official", system=System(backend="hf", model="m"),
        run=Run(outdir=str(outdir), settings=settings), verdict=Verdict(True), figures=figures,
        accuracy=Accuracy(**scores) if mode == "accuracy" else None,
        compliance=() if test06 is None else (Compliance(test="TEST06", passed=test06),))


#: change -> the one rejection it makes (None: none), on llama3.1-8b Offline and Server
RULES = {
    "an official run": ({}, "Server", None),
    "performance_sample_count below": ({"settings__performance_sample_count": 13367}, "Offline", "performance_sample_count"),
    "Offline query too small": ({"settings__samples_per_query": 24}, "Offline", "samples_per_query"),
    "short run": ({"settings__min_duration_ms": 599_999}, "Server", "min_duration"),
    "early stopping not met": ({"early_stopping_met": False}, "Server", "early_stopping"),
    "early stopping does not judge Offline": ({"early_stopping_met": False}, "Offline", None),
    "TTFT at the Server limit": ({"ttft": 2000}, "Server", "token_latency"),
    "TPOT over the limit": ({"tpot": 101}, "Server", "token_latency"),
    "accuracy run over a subset": ({"settings__accuracy_sample_count": 13000}, "Offline", "dataset_coverage"),
    "rouge1 under its target": ({"accuracy": {"rouge1": 38.3}}, "Offline", "accuracy_target"),
    "gen_len under 0.9x": ({"accuracy": {"gen_len": 7_350_000}}, "Offline", "accuracy_target"),
    "gen_len over 1.1x": ({"accuracy": {"gen_len": 8_984_500}}, "Offline", "accuracy_upper_limit"),
    "Interactive: early stopping (loadgen runs it as Server)": (
        {"early_stopping_met": False, "settings__scenario": "Server"}, "Interactive", "early_stopping"),
    "Interactive: the checker holds it to the Server TTFT limit": ({"ttft": 600, "settings__scenario": "Server"},
                                                                   "Interactive", None),
    "no TEST06": ({"test06": None}, "Server", "test06_missing"),
    "TEST06 failed": ({"test06": False}, "Offline", "test06_failed"),
}


@pytest.mark.parametrize(("change", "scenario", "check"), RULES.values(), ids=RULES.keys())
def test_each_rule_of_the_prediction(tmp_path: Path, change: dict, scenario: str, check: str | None) -> None:
    from pytest_mlperf.submission.predict import Folder, predict

    other = "Server" if scenario == "Offline" else "Offline"
    folders = [Folder("llama3.1-8b", scenario, _official(tmp_path, scenario, "performance", **change),
                      _official(tmp_path, scenario, "accuracy", **change)),
               Folder("llama3.1-8b", other, _official(tmp_path, other, "performance"), _official(tmp_path, other, "accuracy"))]
    found = [(r.scenario, r.check) for r in predict(folders)]
    assert found == ([] if check is None else [(scenario, check)])


@pytest.mark.parametrize(("benchmark", "present", "kept", "missing"), [
    ("llama3.1-8b", ["Offline"], {}, "Interactive or Server"),
    ("llama3.1-8b", ["Offline"], {"llama3.1-8b": ["Interactive"]}, None),  # an earlier session's folder counts
    ("llama3.1-8b", ["Interactive"], {}, "Offline"),
    ("llama3.1-8b-edge", ["Offline"], {}, "SingleStream"),
    ("llama3.1-8b-edge", ["SingleStream", "Offline"], {}, None),
])
def test_the_scenario_sets(tmp_path: Path, benchmark: str, present: list, kept: dict, missing: str | None) -> None:
    from pytest_mlperf.submission.predict import Folder, predict

    folders = [Folder(benchmark, s, _official(tmp_path, s, "performance", benchmark), None) for s in present]
    found = [r.why for r in predict(folders, kept) if r.check == "scenarios"]
    if missing is None:
        assert found == []
    else:
        assert len(found) == len(present) and found[0].startswith(f"{benchmark} has no {missing} result in this system")


def test_a_scenario_without_one_of_its_modes_is_predicted_where_the_checker_crashes(
        default_job_tree: dict, tmp_path: Path) -> None:
    """The v6.1 checker stops with a traceback on a scenario folder without accuracy/ (e.g.
    --mlperf-mode=performance): the prediction says so, for either mode."""
    import shutil

    from pytest_mlperf.submission.predict import Folder, predict

    root = tmp_path / "sub"
    shutil.copytree(default_job_tree["workdir"] / "sub", root)
    shutil.rmtree(root / "closed" / "Testorg" / "results" / "box" / "llama3.1-8b" / "Offline" / "accuracy")
    _, lines = run_checker(root, "Testorg", tmp_path)
    assert any(line.startswith("TypeError") for line in lines), "\n".join(lines[-20:])
    perf = _official(tmp_path, "Offline", "performance")
    acc = _official(tmp_path, "Offline", "accuracy")
    server = Folder("llama3.1-8b", "Server", _official(tmp_path, "Server", "performance"),
                    _official(tmp_path, "Server", "accuracy"))
    for folder, missing in ((Folder("llama3.1-8b", "Offline", perf, None), "accuracy_missing"),
                            (Folder("llama3.1-8b", "Offline", None, acc), "performance_missing")):
        found = predict([folder, server])
        assert [(r.check, r.scenario) for r in found] == [(missing, "Offline")]
        assert "stops with a traceback" in found[0].why
