"""TEST06 (``--mlperf-compliance=TEST06``): the audit run, its three checks as the reference's
``run_verification.py`` makes them, ``verify_accuracy.txt`` where the submission tree wants it,
and a stray ``audit.config`` reported, never read. Real loadgen; test doubles, and the
embedded model on the transformers backend."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from pytest_mlperf import BenchmarkRecord
from pytest_mlperf.submission import compliance
from tests.fake_world import RECORDS_JSON, session_records, setup
from tests.shared import shared_dir

DOUBLES = r'''

class DropFirstToken(CopyBackend):
    """Reports one first token, then completes without it: what TEST06's first-token check
    exists to catch."""
    name = "drop-first"

    def issue(self, queries, responder):
        for q in queries:
            out = self.answer(q.prompt)
            responder.first_token(q, out[0])
            responder.complete(q, out[1:])


class DoubleEos(CopyBackend):
    name = "double-eos"

    def answer(self, prompt):
        return list(prompt[1:]) + [2, 2]


BACKENDS.update({"drop-first": DropFirstToken, "double-eos": DoubleEos})
WordTokenizer.eos_token_id = 2

'''

PASSED = ("First token check pass: True\nEOS check pass: True\nSample length check pass: True\n"
          "TEST06 verification complete\n")


def _world(pytester: pytest.Pytester, scenario: str = "Server") -> list[str]:
    settings = '{"server_target_qps": 500, "min_duration_ms": 500}' if scenario != "Offline" else "{}"
    args = setup(pytester, settings=settings)
    pytester.makeconftest("from pathlib import Path\n" + (pytester.path / "conftest.py").read_text() + DOUBLES)
    return [*args, RECORDS_JSON, f"--mlperf-scenario={scenario}", "--mlperf-mode=performance",
            "--mlperf-compliance=TEST06"]


def _record(pytester: pytest.Pytester) -> BenchmarkRecord:
    (record,) = session_records(pytester)
    return record


def test_test06_passes_a_correct_backend_and_writes_the_submission_files(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*_world(pytester), "--mlperf-backend=copy")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*MLPerf compliance*",
                                 "PASS TEST06 *: first token True, eos True, sample length True (* samples)  *verify_accuracy.txt"])
    (check,) = _record(pytester).compliance
    assert check.passed and check.samples >= 90  # ~100 sampled of the audit run's 100+ queries
    audit = Path(check.outdir)
    assert audit.name == "TEST06" and audit.parent.parent.name.endswith("Server-performance")
    assert (audit / "verify_accuracy.txt").read_text() == PASSED
    detail = (audit / "mlperf_log_detail.txt").read_text()
    for key, value in (("accuracy_log_sampling_target", "100"), ("min_query_count", "100"),
                       ("accuracy_log_rng_seed", "720381539243781796"), ("test_mode", '"PerformanceOnly"'),
                       ("sample_concatenate_permutation", "false")):
        assert f'"key": "effective_{key}", "value": {value}' in detail, key
    files = compliance.submission_files(check)
    assert sorted(files) == ["TEST06/accuracy/mlperf_log_accuracy.json", "TEST06/verify_accuracy.txt"]
    assert files["TEST06/accuracy/mlperf_log_accuracy.json"].read_bytes() == (audit / "mlperf_log_accuracy.json").read_bytes()


def test_test06_fails_a_backend_that_drops_the_first_token(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*_world(pytester), "--mlperf-backend=drop-first")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*TEST06 failed (First token check; * samples): First token check: qsl_idx * first token [[]*] but the response starts *",
        "FAIL TEST06 *: first token False, eos True, sample length True*",
    ])
    (check,) = _record(pytester).compliance
    assert not check.passed and check.checks == {"first_token": "False", "eos": "True", "sample_length": "True"}
    assert (Path(check.outdir) / "verify_accuracy.txt").read_text().splitlines() == [
        "First token check pass: False", "EOS check pass: True", "Sample length check pass: True",
        "TEST06 verification failed"]


def test_test06_offline_skips_the_first_token_and_catches_a_double_eos(pytester: pytest.Pytester) -> None:
    args = _world(pytester, scenario="Offline")
    pytester.runpytest(*args, "--mlperf-backend=copy").assert_outcomes(passed=1)
    assert _record(pytester).compliance[0].checks["first_token"] == "Skipped"
    result = pytester.runpytest(*args, "--mlperf-backend=double-eos")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*TEST06 failed (EOS check; * samples): EOS check: qsl_idx * ends in 2 EOS tokens*"])


def test_a_stray_audit_config_is_reported_and_never_read(pytester: pytest.Pytester) -> None:
    args = setup(pytester)
    (pytester.path / "audit.config").write_text(compliance.AUDIT_CONFIG)
    result = pytester.runpytest(*args, "--mlperf-backend=copy", "--mlperf-mode=performance")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["mlperf: WARNING: */audit.config exists: loadgen would turn a run into a compliance run*",
                                 "*GateWarning: */audit.config exists*"])
    (detail,) = (pytester.path / "results").rglob("mlperf_log_detail.txt")
    assert '"key": "effective_accuracy_log_sampling_target", "value": 0' in detail.read_text()


def _entry(data: list[int], first: list[int] | None = None, count: int | None = None) -> dict:
    pack = lambda xs: struct.pack(f"<{len(xs)}i", *xs).hex().upper()  # noqa: E731
    return {"seq_id": 0, "qsl_idx": 3, "data": pack(data), "token_data": pack(first if first is not None else data[:1]),
            "token_count": len(data) if count is None else count}


@pytest.mark.parametrize(("entry", "streaming", "checks"), [
    (_entry([5, 6, 2]), True, ("True", "True", "True")),
    (_entry([5, 6, 2], first=[6]), True, ("False", "True", "True")),
    (_entry([5, 6, 2], first=[6]), False, ("Skipped", "True", "True")),
    (_entry([5, 2, 2]), True, ("True", "False", "True")),
    (_entry([2, 2]), True, ("True", "True", "True")),         # the reference allows [eos, eos]
    (_entry([5, 128009, 128001]), True, ("True", "False", "True")),  # Llama 3.1's EOS ids, mixed
    (_entry([5, 6, 2], count=4), True, ("True", "True", "False")),
    (_entry([]), True, ("True", "True", "True")),
])
def test_the_three_checks(tmp_path: Path, entry: dict, streaming: bool, checks: tuple) -> None:
    log = tmp_path / "mlperf_log_accuracy.json"
    log.write_text(json.dumps([entry]))
    found, _, samples = compliance.check_log(log, streaming=streaming, eos=compliance.eos_ids("llama3.1-8b", (2,)))
    assert (found["first_token"], found["eos"], found["sample_length"]) == checks and samples == 1


def test_eos_ids_come_from_the_benchmark_generation_tokenizer_and_model(tmp_path: Path) -> None:
    class Tok:
        eos_token_id = 7

    (tmp_path / "generation_config.json").write_text(json.dumps({"eos_token_id": [11, 12]}))
    ids = compliance.eos_ids("llama3.1-8b", (9,), Tok(), tmp_path)
    assert ids == (128001, 128008, 128009, 9, 7, 11, 12)


@pytest.mark.heavy
def test_test06_passes_for_the_embedded_model(pytester: pytest.Pytester) -> None:
    """The embedded model on the transformers backend, SingleStream (first tokens streamed):
    the audit run's 100 sampled responses pass all three checks."""
    pytest.importorskip("transformers")
    pytester.makepyfile(test_edge=(
        "import pytest\n"
        "pytestmark = pytest.mark.mlperf(benchmark='llama3.1-8b-edge', scenarios=('SingleStream',),\n"
        "    settings={'min_duration_ms': 1000})\n"
        "def test_edge(mlperf_result): pass\n"))
    result = pytester.runpytest_subprocess(
        "--mlperf-scenario=SingleStream", "--mlperf-mode=performance", "--mlperf-compliance=TEST06",
        "--mlperf-total-samples=64", f"--mlperf-output={pytester.path / 'results'}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["PASS TEST06 *: first token True, eos True, sample length True (* samples)*"])
    (verify,) = (pytester.path / "results").rglob("TEST06/verify_accuracy.txt")
    assert verify.read_text() == PASSED


# -- the same verdict as MLCommons' run_verification.py, on crafted audit logs ----------------

VERIFIER = shared_dir() / "oracles" / "mlperf-test06" / "run_verification.py"

#: Runs the official script, unmodified, once per case folder in one process (numpy imported
#: once): its verify_accuracy.txt, or the exception it stopped with. No -e: argparse keeps a
#: given -e as a string, which no token id equals; its default, 2, is an int.
DRIVER = r'''
import contextlib, io, json, runpy, sys
from pathlib import Path
script, cases, scenarios = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])
out = {}
for name, scenario in scenarios.items():
    case = cases / name
    sys.argv = [script, "-c", str(case), "-o", str(case / "out"), "-s", scenario]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            runpy.run_path(script, run_name="__main__")
        out[name] = (case / "out" / "TEST06" / "verify_accuracy.txt").read_text()
    except BaseException as exc:
        out[name] = "crash: " + type(exc).__name__
print(json.dumps(out))
'''


def _hex(*ids: int) -> str:
    return struct.pack(f"<{len(ids)}i", *ids).hex()


def _e(ids: list[int], first: list[int] | None = None, **over: object) -> dict:
    entry = {"seq_id": 0, "qsl_idx": 7, "data": _hex(*ids), "token_data": _hex(*(ids[:1] if first is None else first)),
             "token_count": len(ids)}
    entry.update(over)
    return {k: v for k, v in entry.items() if v is not DROP}


DROP = object()
GOOD = [_e([5, 6, 2]), _e([9, 2])]


def _log(*entries: dict) -> str:
    return json.dumps(list(entries))


#: case -> (log text, scenario, the plugin's EOS ids, what the official script does)
#: "pass"/"fail": it writes verify_accuracy.txt, and the plugin must write the same text;
#: "crash": it stops with a traceback, and the plugin must fail with a message naming the cause;
#: "stricter": it passes, the plugin fails on purpose (docs/reports.md, "TEST06").
TEST06_CASES: dict[str, tuple[str, str, tuple[int, ...], str]] = {
    "correct, streaming": (_log(*GOOD), "Server", (2,), "pass"),
    "correct, Offline": (_log(*GOOD), "Offline", (2,), "pass"),
    "first token differs": (_log(GOOD[0], _e([5, 6, 2], first=[6])), "Interactive", (2,), "fail"),
    "first token differs, Offline skips it": (_log(_e([5, 6, 2], first=[6])), "Offline", (2,), "pass"),
    "first token longer than the response": (_log(_e([5], first=[5, 6])), "SingleStream", (2,), "pass"),
    "ends in two EOS": (_log(GOOD[0], _e([5, 2, 2])), "Server", (2,), "fail"),
    "only two EOS": (_log(_e([2, 2])), "Server", (2,), "pass"),
    "only three EOS": (_log(_e([2, 2, 2])), "Server", (2,), "fail"),
    "one EOS alone": (_log(_e([2])), "Server", (2,), "pass"),
    "EOS inside, one at the end": (_log(_e([2, 5, 2])), "Server", (2,), "pass"),
    "EOS not at the end": (_log(_e([5, 2, 2, 6])), "Offline", (2,), "pass"),
    "empty response": (_log(_e([], token_count=0, token_data="")), "Server", (2,), "pass"),
    "token_count off by one": (_log(_e([5, 6, 2], token_count=4)), "Offline", (2,), "fail"),
    "token_count as a string": (_log(_e([5, 6, 2], token_count="3")), "Offline", (2,), "pass"),
    "token_count as a float": (_log(_e([5, 6, 2], token_count=3.0)), "Offline", (2,), "pass"),
    "hex in upper case, spaced": (_log(_e([5, 2], data="05000000 02000000".upper())), "Offline", (2,), "pass"),
    "streaming entry without token_data": (_log(GOOD[0], _e([5, 2], token_data=DROP)), "Server", (2,), "fail"),
    "streaming entry with token_data not hex": (_log(_e([5, 2], token_data="zz")), "Server", (2,), "fail"),
    "Offline entry without token_data": (_log(_e([5, 2], token_data=DROP)), "Offline", (2,), "pass"),
    "entry without token_count": (_log(GOOD[0], _e([5, 2], token_count=DROP)), "Server", (2,), "crash"),
    "token_count null": (_log(_e([5, 2], token_count=None)), "Offline", (2,), "crash"),
    "token_count a word": (_log(_e([5, 2], token_count="two")), "Offline", (2,), "crash"),
    "entry without data": (_log(_e([5, 2], data=DROP)), "Offline", (2,), "crash"),
    "data not whole int32": (_log(_e([5, 2], data="050000000200")), "Server", (2,), "crash"),
    "data not hex": (_log(_e([5, 2], data="0x05")), "Offline", (2,), "crash"),
    "data a list": (_log(_e([5, 2], data=[5, 2])), "Offline", (2,), "crash"),
    "entry a number": (json.dumps([_e([5, 2]), 3]), "Offline", (2,), "crash"),
    "a length mismatch before a missing token_count": (
        _log(_e([5, 2], token_count=9), _e([5, 2], token_count=DROP)), "Offline", (2,), "fail"),
    "empty file": ("", "Offline", (2,), "crash"),
    "truncated (run killed mid-write)": (_log(*GOOD)[:-30], "Server", (2,), "crash"),
    "a second closing bracket": (_log(*GOOD) + "\n]\n", "Server", (2,), "crash"),
    "trailing comma": (_log(*GOOD)[:-1] + ",]", "Server", (2,), "crash"),
    "UTF-8 byte order mark": ("\ufeff" + _log(*GOOD), "Server", (2,), "crash"),
    "top level an object of entries": (json.dumps({"0": _e([5, 2])}), "Offline", (2,), "crash"),
    "empty list": ("[]", "Server", (2,), "stricter"),
    "empty object": ("{}", "Server", (2,), "stricter"),
    "empty string": ('""', "Offline", (2,), "stricter"),
    "two EOS ids of the model, mixed": (_log(_e([5, 3, 2])), "Server", (2, 3), "stricter"),
}


@pytest.fixture(scope="module")
def official_verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    if not VERIFIER.is_file():
        pytest.skip(f"MLCommons' run_verification.py is not in {VERIFIER.parent}")
    pytest.importorskip("numpy")
    import subprocess
    import sys

    cases = tmp_path_factory.mktemp("test06-cases")
    for name, (text, _, _, _) in TEST06_CASES.items():
        (cases / name).mkdir()
        (cases / name / "mlperf_log_accuracy.json").write_text(text, encoding="utf-8")
    scenarios = {name: case[1] for name, case in TEST06_CASES.items()}
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(VERIFIER), str(cases), json.dumps(scenarios)],
                          capture_output=True, text=True, timeout=300, check=True)
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.parametrize("name", TEST06_CASES)
def test_test06_verdict_is_the_official_scripts(official_verdicts: dict[str, str], tmp_path: Path, name: str) -> None:
    text, scenario, eos, expected = TEST06_CASES[name]
    official = official_verdicts[name]
    # what the official script did, as the table says (so a changed script is noticed)
    if expected == "crash":
        assert official.startswith("crash: "), official
    else:
        assert official.endswith("TEST06 verification failed\n" if expected == "fail" else "TEST06 verification complete\n"), official
    log = tmp_path / "mlperf_log_accuracy.json"
    log.write_text(text, encoding="utf-8")
    checks, failures, _ = compliance.check_log(log, streaming=scenario != "Offline", eos=eos)
    ours = compliance.verify_text(checks)
    if expected in ("pass", "fail") and not any(f.startswith(compliance.MALFORMED) for f in failures):
        assert ours == official
    elif expected == "fail":  # the script read far enough to fail it; the plugin finds the malformed entry too
        assert ours.endswith("TEST06 verification failed\n")
    else:  # a clear error, never a silent pass
        assert ours.endswith("TEST06 verification failed\n")
        assert failures, "a failed check without a reason"
        if expected == "crash":
            assert failures[0].startswith(f"{compliance.MALFORMED}: "), failures
            assert "run_verification.py stops" in failures[0]
        else:
            assert "run_verification.py passes" in " ".join(failures) or "EOS" in " ".join(failures), failures
