"""``--mlperf-compare-fail=outputs`` end to end (pytester, real loadgen): the saved session keeps
every accuracy sample's output tokens; the same outputs pass, one changed token fails the test
naming the sample and the token; the gate lands in the JSON's gates."""

from __future__ import annotations

import json

import pytest

from pytest_mlperf.gate.compare import parse_fail_bound
from pytest_mlperf.gate.outputs import compare_outputs
from tests.fake_world import RECORDS_JSON, setup

DRIFT = r'''
import os


class DriftBackend(CopyBackend):
    """Copies, except that DRIFT_SAMPLE's output has its token DRIFT_TOKEN moved by one word."""
    name = "drift"

    def issue(self, queries, responder):
        sample = int(os.environ.get("DRIFT_SAMPLE", "-1"))
        at = int(os.environ.get("DRIFT_TOKEN", "0"))
        for q in queries:
            out = self.answer(q.prompt)
            if q.sample_index == sample:
                out[at] = 3 + (out[at] - 3 + 1) % 190
            responder.first_token(q, out[0])
            responder.complete(q, out)


BACKENDS["drift"] = DriftBackend
'''


def _world(pytester: pytest.Pytester) -> list[str]:
    args = setup(pytester)
    pytester.makeconftest((pytester.path / "conftest.py").read_text() + DRIFT)
    return [*args, RECORDS_JSON, "--mlperf-backend=drift", "--mlperf-mode=accuracy", "--mlperf-scenario=Offline",
            f"--mlperf-storage={pytester.path / 'stored'}"]


def test_one_changed_token_fails_the_outputs_gate_naming_sample_and_token(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    args = _world(pytester)
    pytester.runpytest(*args, "--mlperf-save").assert_outcomes(passed=1)
    (saved,) = (pytester.path / "stored").rglob("0001_*.json")
    (kept,) = json.loads(saved.read_text())["outputs"].values()
    assert len(kept) == 12 and all(ids[-1] == 2 for ids in kept.values())  # every sample, EOS last

    same = pytester.runpytest(*args, "--mlperf-compare-fail=outputs")
    same.assert_outcomes(passed=1)
    (gate,) = json.loads((pytester.path / "records.json").read_text())["gates"]
    assert gate["name"] == "outputs" and gate["passed"] and gate["ratio"] == 1.0 and gate["method"] == "exact"

    monkeypatch.setenv("DRIFT_SAMPLE", "5")
    monkeypatch.setenv("DRIFT_TOKEN", "3")
    changed = pytester.runpytest(*args, "--mlperf-compare-fail=outputs")
    changed.assert_outcomes(failed=1)
    was = kept["5"][3]
    changed.stdout.fnmatch_lines([
        f"*outputs differ from the stored run in 1 of 12 samples; first: sample 5, token 3 of 13: "
        f"{was} stored, {3 + (was - 3 + 1) % 190} now*--mlperf-compare-fail=outputs*",
        "  outputs * 12 * 11 * 0.917 * exact * REGRESSED"])
    (gate,) = json.loads((pytester.path / "records.json").read_text())["gates"]
    assert not gate["passed"] and gate["stored"] == 12 and gate["value"] == 11


def test_outputs_comparison_names_missing_and_shorter_outputs() -> None:
    assert parse_fail_bound("outputs").figure.name == "outputs" and str(parse_fail_bound("outputs")) == "outputs"
    shorter = compare_outputs({"0": [5, 6, 2], "1": [7, 2]}, {0: [5, 6, 2], 1: [7]}, "s.json")
    assert not shorter.gate.passed and "sample 1, token 1 of 2: 2 stored, end of output now" in (shorter.reason or "")
    missing = compare_outputs({"0": [5], "1": [7]}, {0: [5]}, "s.json")
    assert "1 of 2 samples; first: sample 1 is missing today" in (missing.reason or "")
    assert compare_outputs({"0": [5]}, {0: [5]}, "s.json").reason is None
