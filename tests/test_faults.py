"""Faults of the system under test, with real loadgen and test-double engines: the bridge's
contract (every query answered once, nothing reaching loadgen after a run) and the plugin's
handling in every scenario (the test fails in bounded time with its logs kept, the engine is
dropped, the next test runs). Real engines: tests/test_faults_engines.py."""

from __future__ import annotations

import array
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_mlperf import embedded
from pytest_mlperf.backends.base import Backend, Query, Responder, SystemSpec
from pytest_mlperf.core.vocabulary import Mode, Profile, Scenario
from pytest_mlperf.loadgen.runner import RunResult, run_loadgen
from pytest_mlperf.loadgen.settings import SettingsPlan
from pytest_mlperf.loadgen.sut import token_ids
from tests.fake_world import setup

_INT32 = next(code for code in ("i", "l") if array.array(code).itemsize == 4)

SCENARIOS = list(Scenario)
#: short runs in every scenario (Server/Interactive: 16 queries at 200 qps)
QUICK = {"server_target_qps": 200, "min_query_count": 16, "min_duration_ms": 100}
N = 8


def plan(scenario: Scenario, **overrides: Any) -> SettingsPlan:
    settings = {k: v for k, v in QUICK.items() if scenario.streaming or k != "server_target_qps"}
    if scenario is Scenario.OFFLINE:
        settings = {}
    return SettingsPlan("llama3.1-8b", scenario, Profile.QUICK, N, N,
                        cli_overrides={**settings, **overrides})


class Scripted(Backend):
    """Answers each query on a thread of its own as ``answer(query, responder)`` says; the
    embedded model's folder as its system, so the bridge knows the vocabulary (3072 ids)."""

    name = "scripted"
    streaming = True

    def __init__(self, answer: Callable[[Query, Responder], None]) -> None:
        super().__init__(SystemSpec.local(embedded.MODEL_DIR, embedded=True))
        self.answer = answer
        self.issued = 0

    def start(self) -> None:
        pass

    def issue(self, queries, responder) -> None:
        self.issued += len(queries)

        def work() -> None:
            for q in queries:
                self.answer(q, responder)
        threading.Thread(target=work, daemon=True).start()


def good(q: Query, r: Responder) -> None:
    r.first_token(q, 5)
    r.complete(q, [5, 6, 7])


def run(tmp_path: Path, backend: Backend, scenario: Scenario, mode: Mode = Mode.PERFORMANCE,
        name: str = "run", **kwargs: Any) -> tuple[RunResult, float]:
    began = time.monotonic()
    result = run_loadgen(plan=plan(scenario), mode=mode, backend=backend, prompts=[[1, 2, 3]] * N,
                         outdir=tmp_path / name, **kwargs)
    return result, time.monotonic() - began


# --- the bridge: what a backend can send, and what becomes of it ------------------------------


TOKEN_CASES = [
    ([5, 6], None),
    ([], None),
    (np.array([5, 6], dtype=np.int64), None),
    ([2**31], "token id 2147483648 outside int32"),
    ([2**70], "among its token ids, which must be integers"),
    ([-1], "token id -1 outside"),
    ([1.5], "1.5 (float) among its token ids"),
    ([True, 2], None),  # bools are ints to Python and numpy alike: 1, 2
    ([True, False], "True (bool) among its token ids"),
    (["7"], "'7' (str) among its token ids"),
    ([None], "None (NoneType) among its token ids"),
    ([[1, 2], [3, 4]], "token ids shaped (2, 2), not a flat list"),
    ([[1, 2], [3]], "not a flat list of integers"),
    (np.array([5.0]), "5.0 (float) among its token ids"),
    ((3071, 0, 2**31 - 1), None),
    ([np.int64(5), 6], None),
    # int32 arrays, as the openai client processes hand them over: checked all the same
    (array.array(_INT32, [5, 6]), None),
    (array.array(_INT32, [-1, 5]), "token id -1 outside"),
    (array.array(_INT32, [2**31 - 1, 0]), None),
    (array.array(_INT32), None),
]


@pytest.mark.parametrize(("tokens", "problem"), TOKEN_CASES)
def test_token_ids_are_checked_before_anything_changes(tokens: Any, problem: str | None) -> None:
    data, why = token_ids(tokens)
    if problem is None:
        assert why is None and data is not None and data.dtype == np.int32
    else:
        assert data is None and why is not None and problem in why, why


class _Loadgen:
    """Records what reaches loadgen: (call, response id, the ids in the buffer, token count)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, list[int], int]] = []

    def QuerySampleResponse(self, rid: int, address: int, nbytes: int, count: int) -> tuple:  # noqa: N802
        import ctypes

        return rid, list((ctypes.c_int32 * (nbytes // 4)).from_address(address)) if nbytes else [], count

    def FirstTokenComplete(self, responses: list) -> None:  # noqa: N802
        self.calls += [("first", *r) for r in responses]

    def QuerySamplesComplete(self, responses: list) -> None:  # noqa: N802
        self.calls += [("complete", *r) for r in responses]


@pytest.mark.parametrize(("tokens", "problem"), TOKEN_CASES)
def test_the_responder_passes_on_exactly_what_the_full_check_accepts(tokens: Any, problem: str | None) -> None:
    """The responder's fast path (short lists of ints, no numpy) gives the verdict of
    :func:`token_ids` and hands loadgen the same int32 ids, first token included."""
    from pytest_mlperf.loadgen.sut import LoadgenResponder

    lg = _Loadgen()
    responder = LoadgenResponder(lg, first_token_required=True)
    query = Query(7, 0, [1])
    responder.track([query])
    responder.first_token(query, 9)
    responder.complete(query, tokens)
    if problem is None:
        expected = [int(t) for t in tokens]
        assert responder.error is None and lg.calls == [("first", 7, [9], 1), ("complete", 7, expected, len(expected))]
        assert responder.output_tokens == len(expected)
    else:
        assert responder.error is not None and problem in str(responder.error), responder.error
        assert lg.calls[1:] == [("complete", 7, [], 0)]  # the failed run's empty answer


def test_ids_outside_the_vocabulary_are_named() -> None:
    _, why = token_ids([5, 3072], vocab_size=3072)
    assert why == "token id 3072 outside the model's vocabulary (3072 ids)"


def _twice(q: Query, r: Responder) -> None:
    good(q, r)
    r.complete(q, [5])


def _first_token_after(q: Query, r: Responder) -> None:
    good(q, r)
    r.first_token(q, 5)


def _first_token_twice(q: Query, r: Responder) -> None:
    r.first_token(q, 5)
    r.first_token(q, 6)
    r.complete(q, [5, 6])


def _stranger(q: Query, r: Responder) -> None:
    r.complete(Query(q.response_id + 1_000_003, q.sample_index, q.prompt), [5])


def _overflow(q: Query, r: Responder) -> None:
    r.first_token(q, 5)
    r.complete(q, [5, 2**31 + 7])


def _out_of_vocab(q: Query, r: Responder) -> None:
    r.complete(q, [5, 99999])


def _bad_first_token(q: Query, r: Responder) -> None:
    r.first_token(q, -3)


def _raises(q: Query, r: Responder) -> None:
    raise RuntimeError("worker died")  # on the backend's thread: nobody answers


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.value for s in SCENARIOS])
@pytest.mark.parametrize(("answer", "error"), [
    (_twice, "BackendFault: query * (sample *): an answer after it was answered already (answered twice)"),
    (_first_token_after, "BackendFault: query *: a first token after it was answered already*"),
    (_first_token_twice, "BackendFault: query *: first token reported twice"),
    (_stranger, "BackendFault: an answer for a query loadgen never issued (query *"),
    (_overflow, "BackendFault: query *: token id 2147483655 outside int32"),
    (_out_of_vocab, "BackendFault: query *: token id 99999 outside the model's vocabulary (3072 ids)"),
    (_bad_first_token, "BackendFault: query *: first token: token id -3 outside*"),
], ids=["answers-twice", "first-token-after-answer", "first-token-twice", "unknown-query",
        "int32-overflow", "outside-vocabulary", "bad-first-token"])
def test_a_broken_answer_fails_the_run_at_once(tmp_path: Path, scenario: Scenario, answer: Any,
                                               error: str) -> None:
    import fnmatch

    backend = Scripted(answer)
    result, took = run(tmp_path, backend, scenario, timeout_s=60)
    assert result.backend_error is not None and fnmatch.fnmatch(result.backend_error, error), result.backend_error
    assert took < 20 and not result.timed_out  # failed at the fault, not at the time limit
    assert result.detail_log.is_file()  # loadgen finished its logs: nothing left waiting
    if answer is _twice:
        again, _ = run(tmp_path, Scripted(good), scenario, name="again")  # loadgen is reusable
        assert again.backend_error is None and again.output_tokens > 0


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.value for s in SCENARIOS])
def test_a_dead_backend_thread_ends_at_the_time_limit(tmp_path: Path, scenario: Scenario) -> None:
    result, took = run(tmp_path, Scripted(_raises), scenario, timeout_s=2)
    assert result.timed_out and "did not finish within 2 s" in (result.backend_error or "")
    # who owed the answers is named (a served backend names its endpoints too)
    assert "queries were still unanswered by backend" in (result.backend_error or ""), result.backend_error
    assert took < 10
    assert result.detail_log.is_file()


class Blocking(Scripted):
    """``issue()`` never returns: the bridge must not let it hold loadgen's issue thread."""

    def issue(self, queries, responder) -> None:
        threading.Event().wait()


class Raising(Scripted):
    def issue(self, queries, responder) -> None:
        raise MemoryError("CUDA out of memory")


class FlushRaising(Scripted):
    def flush(self) -> None:
        raise RuntimeError("flush failed")


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.value for s in SCENARIOS])
@pytest.mark.parametrize(("cls", "error", "bound"), [
    (Blocking, "TimeoutError: the run did not finish within 2 s*", 12),
    (Raising, "MemoryError: CUDA out of memory", 12),
    (FlushRaising, "RuntimeError: flush failed", 12),
], ids=["issue-blocks", "issue-raises", "flush-raises"])
def test_issue_and_flush_faults(tmp_path: Path, scenario: Scenario, cls: type, error: str,
                                bound: float) -> None:
    import fnmatch

    result, took = run(tmp_path, cls(good), scenario, timeout_s=2)
    assert fnmatch.fnmatch(result.backend_error or "", error), result.backend_error
    assert took < bound
    assert result.detail_log.is_file()


def test_late_answers_after_a_run_never_reach_loadgen(tmp_path: Path) -> None:
    """A backend that answers again after the run ended (loadgen's response ids are gone by
    then): ignored, and the process lives on to run again."""
    seen: list[tuple[Query, Responder]] = []

    def answer(q: Query, r: Responder) -> None:
        good(q, r)
        seen.append((q, r))

    result, _ = run(tmp_path, Scripted(answer), Scenario.SERVER)
    assert result.backend_error is None
    for q, r in seen:  # the finished run's responder
        r.first_token(q, 1)
        r.complete(q, [1, 2])
        r.fail(RuntimeError("late"))
    again, _ = run(tmp_path, Scripted(good), Scenario.SERVER, name="again")
    assert again.backend_error is None


def test_a_server_run_stops_at_its_time_limit_not_at_its_schedule(tmp_path: Path) -> None:
    """The schedule (400 queries at 100 qps: 4 s) fits the limit; an engine that never answers
    is failed at 5 s, and loadgen, whose schedule is over by then, ends at once."""
    plan_ = SettingsPlan("llama3.1-8b", Scenario.SERVER, Profile.QUICK, N, N,
                         cli_overrides={"server_target_qps": 100, "min_query_count": 400,
                                        "min_duration_ms": 0})
    began = time.monotonic()
    result = run_loadgen(plan=plan_, mode=Mode.PERFORMANCE, backend=Scripted(lambda q, r: None),
                         prompts=[[1, 2, 3]] * N, outdir=tmp_path / "run", timeout_s=5)
    took = time.monotonic() - began
    assert result.timed_out and took < 8, took


def test_a_limit_shorter_than_the_schedule_is_refused_before_the_run(tmp_path: Path) -> None:
    from pytest_mlperf.loadgen.settings import SettingsError

    plan_ = SettingsPlan("llama3.1-8b", Scenario.SERVER, Profile.QUICK, N, N,
                         cli_overrides={"server_target_qps": 4})
    with pytest.raises(SettingsError, match=r"--mlperf-run-timeout=30 s is shorter than this "
                       r"run's schedule.*210 s: 840 queries at server_target_qps 4"):
        run_loadgen(plan=plan_, mode=Mode.PERFORMANCE, backend=Scripted(good),
                    prompts=[[1, 2, 3]] * N, outdir=tmp_path / "run", timeout_s=30)
    assert not (tmp_path / "run").exists()


def test_without_a_limit_the_default_one_ends_a_hang(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No --mlperf-run-timeout: the default limit (here shrunk: 0.1 s a sample, 1 s margin)
    still ends an engine that never answers."""
    from pytest_mlperf.loadgen import budget, runner

    monkeypatch.setattr(budget, "MARGIN_S", 1.0)
    monkeypatch.setattr(runner, "MARGIN_S", 1.0)
    monkeypatch.setattr(budget, "SLOWEST_SAMPLE_S", 0.1)
    result, took = run(tmp_path, Scripted(lambda q, r: None), Scenario.OFFLINE)
    assert result.timed_out and took < 6
    assert "the default limit, 2 x 1 s + 1 s (8 samples at 0.1 s each at most)" in result.backend_error


# --- the plugin: every scenario, every fault, with the test-double engines ------------------------

FAULTY = r'''

class Faulty(CopyBackend):
    """A copy engine with one fault, named by the engine argument 'fault'."""
    name = "faulty"

    @property
    def fault(self):
        return self.engine_args.get("fault")

    def start(self):
        Path("starts.txt").open("a").write(f"{id(self)} {self.fault}\n")
        if self.fault == "raise-at-start":
            raise RuntimeError("no GPU left")
        if self.fault == "hang-at-start":
            threading.Event().wait()

    def issue(self, queries, responder):
        fault = self.fault
        if fault == "raise-mid-run":
            raise RuntimeError("CUDA error: device-side assert triggered")
        if fault == "never-answers":
            return

        def work():
            for q in queries:
                out = self.answer(q.prompt)
                if fault == "malformed-ids":
                    out = [t + 2**31 for t in out]
                responder.first_token(q, out[0])
                responder.complete(q, out)
                if fault == "answers-twice":
                    responder.complete(q, out)
        threading.Thread(target=work, daemon=True).start()

    def close(self):
        if self.fault == "raise-at-close":
            raise RuntimeError("engine core died at shutdown")
        if self.fault == "hang-at-close":
            threading.Event().wait()


BACKENDS["faulty"] = Faulty
'''

BENCH = '''
import pytest

MARK = dict(benchmark="llama3.1-8b", scenarios=("Offline", "Server", "SingleStream", "Interactive"),
            baseline={"rouge1": 100.0, "rouge2": 100.0, "rougeL": 100.0, "rougeLsum": 100.0},
            settings={"server_target_qps": 200, "min_query_count": 16, "min_duration_ms": 100})


@pytest.mark.mlperf(**MARK, engine_args={"fault": "FAULT"})
def test_faulty(mlperf_result):
    pass


@pytest.mark.mlperf(**MARK)
def test_next(mlperf_result):
    pass
'''

#: fault -> (outcomes, a line of the faulty tests' failure, seconds the session may take)
FAULTS = {
    "raise-at-start": ({"failed": 4, "passed": 4},
                       "*backend 'faulty' (Faulty) failed to start: RuntimeError: no GPU left*", 30),
    "hang-at-start": ({"failed": 4, "passed": 4},
                      "*starting backend 'faulty' (Faulty) for Offline did not finish within 2 s (--mlperf-engine-timeout)*", 30),
    "raise-mid-run": ({"failed": 4, "passed": 4},
                      "*engine failed: RuntimeError: CUDA error: device-side assert triggered (the engine was closed and dropped*", 30),
    "never-answers": ({"failed": 4, "passed": 4},
                      "*engine failed: TimeoutError: the run did not finish within 2 s (--mlperf-run-timeout)*", 45),
    "answers-twice": ({"failed": 4, "passed": 4},
                      "*engine failed: BackendFault: query * (sample *): an answer after it was answered already (answered twice)*", 30),
    "malformed-ids": ({"failed": 4, "passed": 4},
                      "*engine failed: BackendFault: query * (sample *): *token id * outside int32*", 30),
    "raise-at-close": ({"passed": 8, "errors": 1},
                       "*closing engines failed: closing backend 'faulty' (Faulty) failed: RuntimeError: engine core died at shutdown*", 30),
    "hang-at-close": ({"passed": 8, "errors": 1},
                      "*closing backend 'faulty' (Faulty) did not finish within 2 s; it was left behind*", 30),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_every_fault_in_every_scenario_fails_its_tests_and_the_next_test_runs(
        pytester: pytest.Pytester, fault: str) -> None:
    outcomes, line, bound = FAULTS[fault]
    args = setup(pytester)
    pytester.makeconftest("from pathlib import Path\n" + (pytester.path / "conftest.py").read_text() + FAULTY)
    pytester.makepyfile(test_bench=BENCH.replace("FAULT", fault))
    began = time.monotonic()
    limit = "2" if fault == "never-answers" else "5"
    result = pytester.runpytest("--mlperf-backend=faulty", "--mlperf-mode=accuracy",
                                "--mlperf-scenario=Offline,Server,SingleStream,Interactive",
                                "--mlperf-engine-timeout=2", f"--mlperf-run-timeout={limit}", *args)
    took = time.monotonic() - began
    result.assert_outcomes(**outcomes)
    result.stdout.fnmatch_lines([line])
    assert took < bound, took
    failed = [r.nodeid for r in result.reprec.getreports("pytest_runtest_logreport")
              if r.failed and r.when == "call"]
    assert all("test_faulty" in nodeid for nodeid in failed), failed
    starts = (pytester.path / "starts.txt").read_text().split("\n")
    if fault in ("raise-mid-run", "never-answers", "answers-twice", "malformed-ids"):
        # every failed run dropped its engine: each faulty test started a fresh one, and the
        # logs of every failed run are kept
        assert sum(f" {fault}" in s for s in starts) == 4
        logs = list((pytester.path / "results").glob("test_bench.py_test_faulty*/run_1/accuracy/mlperf_log_detail.txt"))
        assert len(logs) == 4
    if fault in ("raise-at-start", "hang-at-start"):
        assert sum(f" {fault}" in s for s in starts) == 1  # not retried: the rest fail at once
