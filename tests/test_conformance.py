"""Every run is classified MLPerf or not before it starts, from the rules of its benchmark
(gate/rules.py); the classification rides on the record into the terminal table, summary.md,
the JSON and HTML; ``--mlperf-profile=official`` refuses what the rules forbid before any
engine starts unless ``--mlperf-allow-nonconformant``. Real loadgen, test-double engines."""

from __future__ import annotations

import json

import pytest

from tests.fake_world import RECORDS_JSON, session_records, setup

#: backends that break a rule the official profile refuses; ``start`` leaves a file behind so a
#: test can tell whether an engine started
RULE_BREAKERS = r'''

class Marked:
    def start(self):
        import pathlib
        pathlib.Path("engine-started").write_text(self.name)


class CachingBackend(Marked, CopyBackend):
    name = "caching"

    def rule_facts(self):
        return {"prefix_caching": True}


class SamplingBackend(Marked, CopyBackend):
    name = "sampling"

    def rule_facts(self):
        return {"prefix_caching": False, "request_fields": {"temperature": 0.8}}


class CleanBackend(Marked, CopyBackend):
    name = "clean"

    def rule_facts(self):
        return {"prefix_caching": False}


BACKENDS.update({c.name: c for c in (CachingBackend, SamplingBackend, CleanBackend)})
'''


def _world(pytester: pytest.Pytester, **kw) -> list[str]:
    args = setup(pytester, **kw)
    conftest = pytester.path / "conftest.py"
    conftest.write_text(conftest.read_text() + RULE_BREAKERS)
    return args


def test_a_subset_run_says_so_in_the_table_summary_and_json(pytester: pytest.Pytester) -> None:
    args = _world(pytester)
    result = pytester.runpytest("--mlperf-backend=clean", "--mlperf-mode=accuracy", RECORDS_JSON, *args)
    result.assert_outcomes(passed=1)
    record, = session_records(pytester)
    assert record.conformance.checked and not record.conformance.mlperf
    assert record.conformance.reasons[0] == "12 of 13,368 samples: not an MLPerf accuracy result"
    assert "quick profile (CI-sized runs)" in record.conformance.reasons
    result.stdout.fnmatch_lines(["mlperf: quick profile: CI-sized runs, each labelled not MLPerf*",
                                 "*quick profile*, MLPerf: 0 of 1 runs*",
                                 "    not MLPerf: 12 of 13,368 samples: not an MLPerf accuracy result*"])
    summary = (pytester.path / "results" / "summary.md").read_text()
    assert "| not MLPerf: 12 of 13,368 samples: not an MLPerf accuracy result" in summary
    data = json.loads((pytester.path / "records.json").read_text())
    assert data["records"][0]["conformance"]["mlperf"] is False


@pytest.mark.parametrize(("backend", "why"), [
    ("caching", "prefix caching is on: MLPerf forbids caching across queries"),
    ("sampling", "temperature=0.8: MLPerf requires greedy decoding"),
    ("clean", "12 of 13,368 samples: not an MLPerf accuracy result"),
])
def test_official_refuses_before_any_engine_starts(pytester: pytest.Pytester, backend: str, why: str) -> None:
    args = _world(pytester)
    result = pytester.runpytest(f"--mlperf-backend={backend}", "--mlperf-profile=official",
                                "--mlperf-mode=accuracy", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines([f"*--mlperf-profile=official: llama3.1-8b Offline accuracy breaks "
                                 f"MLPerf's rules, so it was not started: *{why}*--mlperf-allow-nonconformant*"])
    assert not (pytester.path / "engine-started").exists()


def test_one_flag_runs_it_labelled(pytester: pytest.Pytester) -> None:
    args = _world(pytester)
    result = pytester.runpytest("--mlperf-backend=caching", "--mlperf-profile=official",
                                "--mlperf-mode=accuracy", "--mlperf-allow-nonconformant", RECORDS_JSON, *args)
    result.assert_outcomes(passed=1)
    assert (pytester.path / "engine-started").exists()
    record, = session_records(pytester)
    assert not record.conformance.mlperf
    assert any(r.startswith("prefix caching is on") for r in record.conformance.reasons)
    assert "quick profile (CI-sized runs)" not in record.conformance.reasons


def test_quick_profile_only_labels(pytester: pytest.Pytester) -> None:
    args = _world(pytester)
    result = pytester.runpytest("--mlperf-backend=caching", "--mlperf-mode=accuracy", RECORDS_JSON, *args)
    result.assert_outcomes(passed=1)
    record, = session_records(pytester)
    assert any(r.startswith("prefix caching is on") for r in record.conformance.reasons)


def test_the_flag_takes_true_or_false_only(pytester: pytest.Pytester) -> None:
    args = _world(pytester)
    result = pytester.runpytest("--mlperf-allow-nonconformant=maybe", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--mlperf-allow-nonconformant (ini mlperf_allow_nonconformant): "
                                 "invalid value 'maybe'; expected true or false*"])


def test_the_ini_key_allows_it_too(pytester: pytest.Pytester) -> None:
    args = _world(pytester)
    pytester.makeini("[pytest]\nmlperf_allow_nonconformant = true\n")
    result = pytester.runpytest("--mlperf-backend=caching", "--mlperf-profile=official",
                                "--mlperf-mode=accuracy", *args)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*--mlperf-profile=official --mlperf-allow-nonconformant*",
                                 "mlperf: official profile, --mlperf-allow-nonconformant: runs MLPerf's rules "
                                 "forbid are run and labelled not MLPerf"])


def test_a_stored_record_without_the_field_still_loads_and_the_field_round_trips() -> None:
    from pytest_mlperf.core.record import BenchmarkRecord, Conformance, Run, System, Verdict
    from pytest_mlperf.report.terminal import conformance_text

    record = BenchmarkRecord(benchmark="llama3.1-8b", scenario="Offline", mode="accuracy", profile="quick",
                             system=System(backend="hf", model="m"), run=Run(outdir="o"), verdict=Verdict(True))
    old = record.to_json()
    del old["conformance"]
    assert BenchmarkRecord.from_json(old).conformance == Conformance()
    assert conformance_text(BenchmarkRecord.from_json(old)) == ""  # not checked: nothing claimed
    labelled = BenchmarkRecord(**{**record.__dict__, "conformance": Conformance(False, ("a", "b"), True)})
    assert BenchmarkRecord.loads(labelled.dumps()).conformance == Conformance(False, ("a", "b"), True)
    assert conformance_text(labelled) == "not MLPerf: a; b"
