"""A run whose figures cannot be trusted (its backend failed, it was interrupted, it gave empty
answers) is never a baseline. Before: ``--mlperf-save`` stored a run whose backend raised
mid-run (every query left answered empty at once: a huge samples/s), the next healthy run failed
as a regression against it, and the table showed ``FAIL VALID`` with that figure, metrics.txt
``mlperf_valid 1``. Real loadgen; the backend double only decides when to fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_mlperf.loadgen.runner import UNTRUSTED_FILE
from tests.fake_world import RECORDS_JSON, session_records, setup

BREAKS = r'''
import os


class BreaksBackend(CopyBackend):
    """Answers a query every 20 ms; with BREAK_AFTER=n, raises after n answers."""
    name = "breaks"

    def start(self):
        import queue
        self.pending = queue.Queue()
        threading.Thread(target=self.work, daemon=True).start()

    def issue(self, queries, responder):
        for q in queries:
            self.pending.put((q, responder))

    def work(self):
        done = 0
        while True:
            q, responder = self.pending.get()
            time.sleep(0.02)
            done += 1
            limit = int(os.environ.get("BREAK_AFTER", "0"))
            if limit and done > limit:
                responder.fail(RuntimeError("the engine fell over"))
                continue
            out = self.answer(q.prompt)
            if os.environ.get("EMPTY_ANSWERS"):
                out = []
            responder.first_token(q, out[0] if out else 2)
            responder.complete(q, out)


BACKENDS["breaks"] = BreaksBackend
'''


def _world(pytester: pytest.Pytester) -> list[str]:
    args = setup(pytester, n=24)
    pytester.makeconftest("from pathlib import Path\n" + (pytester.path / "conftest.py").read_text() + BREAKS)
    return [*args, RECORDS_JSON, "--mlperf-backend=breaks", "--mlperf-mode=performance",
            "--mlperf-scenario=Offline", f"--mlperf-storage={pytester.path / 'stored'}"]


def test_a_failed_run_is_stored_marked_and_never_a_baseline(pytester: pytest.Pytester, monkeypatch) -> None:
    args = _world(pytester)
    monkeypatch.setenv("BREAK_AFTER", "3")
    result = pytester.runpytest(*args, "--mlperf-save")
    result.assert_outcomes(failed=1)
    (record,) = session_records(pytester)
    assert not record.figures_valid and "backend failed" in (record.figures_invalid_reason or "")
    assert record.figures.tokens_per_second is None and record.figures.samples_per_second is None
    assert record.run.validity is None
    # stored, marked
    (saved,) = (pytester.path / "stored").rglob("0001_*.json")
    stored = json.loads(saved.read_text())["records"][0]
    assert stored["figures_valid"] is False and stored["figures"]["tokens_per_second"] is None
    # no throughput or validity in the table, metrics.txt; the folder says its summary is void
    out = result.stdout.str()
    row = next(line for line in out.splitlines() if line.startswith("llama3.1-8b"))
    assert "VALID" not in row, row
    metrics = (pytester.path / "results" / "metrics.txt").read_text()
    assert "mlperf_valid" not in metrics and "tokens_per_second" not in metrics, metrics
    run = Path(record.run.outdir)
    run = run if run.is_absolute() else pytester.path / run
    assert "cannot be trusted" in (run / UNTRUSTED_FILE).read_text()

    # the next, healthy run is not judged against it
    monkeypatch.delenv("BREAK_AFTER")
    result = pytester.runpytest(*args, "--mlperf-compare-fail=tokens_per_second:5%")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*not compared*stored run's figures cannot be trusted (the backend failed*"])
    (healthy,) = session_records(pytester)
    assert healthy.figures_valid and healthy.figures.tokens_per_second


def test_empty_answers_make_the_figures_untrusted(pytester: pytest.Pytester, monkeypatch) -> None:
    args = _world(pytester)
    monkeypatch.setenv("EMPTY_ANSWERS", "1")
    result = pytester.runpytest(*args)
    result.assert_outcomes(failed=1)
    (record,) = session_records(pytester)
    assert not record.figures_valid and "answer(s) of no token" in (record.figures_invalid_reason or "")
    assert record.figures.tokens_per_second is None and record.run.validity is None
