"""The openai backend's client over several processes (``--mlperf-client-processes``).

Against the fake server of ``tests/servers.py`` with the real loadgen: the same answers, first
tokens and per-endpoint counts as the one-loop client (every endpoint failure named as the
one-loop client names it: tests/test_openai_backend.py, parametrized); a client process killed
mid-run fails the run naming it, and the next run refuses to start; answers of an earlier run
never reach a later one; the processes ignore Ctrl-C and are gone after ``close()``; the
option's mistakes are usage errors. Against two real ``vllm serve``:
tests/test_openai_backend.py (``servers``).
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_mlperf.backends.base import Query
from pytest_mlperf.backends.openai import OpenAIBackend, auto_client_processes
from pytest_mlperf.backends.openai_pool import ClientProcessError
from pytest_mlperf.core.vocabulary import Mode, Scenario
from tests.servers import SERVED_NAME, Behaviour, FakeServer, answer_tokens
from tests.test_openai_backend import BENCHMARK, PROMPTS, _outputs, _run
from tests.test_openai_backend import _backend as _started_backend


def _backend(*servers: FakeServer, processes: int | None = 2, **kwargs: Any) -> OpenAIBackend:
    return _started_backend(*servers, client_processes=processes, **kwargs)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purposes (its parent has not reaped it yet)
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Recorder:
    """A responder that keeps what it is told."""

    def __init__(self) -> None:
        self.first: dict[int, int] = {}
        self.done: dict[int, list[int]] = {}
        self.error: BaseException | None = None
        self.lock = threading.Lock()

    def first_token(self, query: Query, token_id: int) -> None:
        self.first[query.response_id] = token_id

    def complete(self, query: Query, tokens: Sequence[int]) -> None:
        with self.lock:
            assert query.response_id not in self.done, "answered twice"
            self.done[query.response_id] = list(tokens)

    def fail(self, error: BaseException) -> None:
        self.error = error

    def wait(self, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.done) < count and self.error is None and time.monotonic() < deadline:
            time.sleep(0.01)


def test_same_answers_first_tokens_and_counts_as_one_loop(tmp_path: Path, started: list) -> None:
    """Offline (64 queries at once, held 0.3 s by each server) and Server through loadgen: the
    answers and first tokens are the servers', the endpoints share the queries as the one-loop
    client shares them, both processes took part, and the record says how the client ran."""
    with FakeServer(Behaviour(delay_s=0.3)) as a, FakeServer(Behaviour(delay_s=0.3)) as b:
        backend = _backend(a, b)
        started.append(backend)
        info = backend.describe()
        assert info["client_processes"] == 2 and info["client"].endswith("in 2 processes")
        pids = backend.client_pids()
        assert len(pids) == 2 and all(_alive(p) for p in pids) and os.getpid() not in pids
        offline = _run(backend, Scenario.OFFLINE, Mode.ACCURACY, PROMPTS, tmp_path / "offline")
        assert offline.backend_error is None
        assert (a.max_in_flight, b.max_in_flight) == (32, 32)
        outputs = _outputs(offline)
        assert [outputs[i]["tokens"] for i in range(len(PROMPTS))] == [answer_tokens(p, 128) for p in PROMPTS]
        counts = backend.describe()["endpoint_counts"]
        assert [counts[s.url]["requests"] for s in (a, b)] == [32, 32]
        assert sum(c["output_tokens"] for c in counts.values()) == offline.output_tokens
        assert all(c["server_output_tokens"] == c["output_tokens"] and c["failed"] == 0 for c in counts.values())

        server = _run(backend, Scenario.SERVER, Mode.ACCURACY, PROMPTS[:32], tmp_path / "server",
                      server_target_qps=100)
        assert server.backend_error is None
        outputs = _outputs(server)
        for i in range(32):
            assert outputs[i]["tokens"] == answer_tokens(PROMPTS[i], 128)
            assert outputs[i]["first"] == answer_tokens(PROMPTS[i], 128)[:1]
        counts = backend.describe()["endpoint_counts"]  # per run: this run's 32
        assert sum(c["completed"] for c in counts.values()) == 32


def test_a_valid_server_run_and_prompts_sent_once_per_process(tmp_path: Path, started: list) -> None:
    """A VALID Server performance run of 460+ queries over 64 samples: each prompt crosses to a
    process at most once per run (the server sees every prompt in full every time)."""
    with FakeServer() as server:
        backend = _backend(server)
        started.append(backend)
        result = _run(backend, Scenario.SERVER, Mode.PERFORMANCE, PROMPTS, tmp_path / "run",
                      server_target_qps=200, min_query_count=460, min_duration_ms=1000)
        assert result.backend_error is None and result.validity == "VALID"
        pool = backend._pool
        sent = sum(len(p.prompts) for p in pool._procs)
        assert sent <= 2 * len(PROMPTS) < result.figures.query_count
        assert server.requests - 1 == result.figures.query_count  # the start's probe, then each once


def test_a_killed_client_process_fails_the_run_naming_it(tmp_path: Path, started: list) -> None:
    """SIGKILL to one client process 1 s into a Server run (answers held 0.2 s): the run fails
    naming the process and the signal, its logs kept; the next run refuses to start."""
    with FakeServer(Behaviour(delay_s=0.2)) as server:
        backend = _backend(server)
        started.append(backend)
        victim = backend.client_pids()[1]
        killer = threading.Timer(1.0, os.kill, (victim, signal.SIGKILL))
        killer.start()
        try:
            result = _run(backend, Scenario.SERVER, Mode.PERFORMANCE, PROMPTS, tmp_path / "run",
                          server_target_qps=100, min_query_count=300, min_duration_ms=1000)
        finally:
            killer.cancel()
        assert result.backend_error is not None
        assert re.search(rf"client process 1 \(pid {victim}\) was killed by signal 9", result.backend_error), \
            result.backend_error
        assert result.detail_log.is_file()
        with pytest.raises(ClientProcessError, match="client process 1 .*killed by signal 9"):
            backend.prepare(Scenario.SERVER)


def test_answers_of_an_earlier_run_never_reach_a_later_one(started: list) -> None:
    """A query is in flight (held 0.4 s) when the next run starts and issues a query with the
    same response id: the new query gets one answer, from its own request; the old none."""
    with FakeServer(Behaviour(delay_s=0.4)) as server:
        backend = _backend(server, processes=2)
        started.append(backend)
        backend.prepare(Scenario.SERVER)
        old, new = Recorder(), Recorder()
        backend.issue([Query(7, 0, PROMPTS[0])], old)
        time.sleep(0.1)
        backend.prepare(Scenario.SERVER)
        backend.issue([Query(7, 1, PROMPTS[1])], new)
        new.wait(1)
        time.sleep(0.6)  # the old request would have answered by now
        assert new.error is None and new.done == {7: answer_tokens(PROMPTS[1], 128)}
        assert old.done == {} and old.error is None


def test_processes_ignore_ctrl_c_and_are_gone_after_close(started: list) -> None:
    """SIGINT to the client processes (a terminal's Ctrl-C reaches the whole process group):
    they keep serving, the controller decides; after close() none is left."""
    with FakeServer() as server:
        backend = _backend(server, processes=2)
        pids = backend.client_pids()
        for pid in pids:
            os.kill(pid, signal.SIGINT)
        time.sleep(0.3)
        assert all(_alive(p) for p in pids)
        backend.prepare(Scenario.SERVER)
        recorder = Recorder()
        backend.issue([Query(i, i, PROMPTS[i]) for i in range(8)], recorder)
        recorder.wait(8)
        assert recorder.error is None and len(recorder.done) == 8
        backend.close()
        assert not any(_alive(p) for p in pids)


def test_text_only_servers_keep_the_one_loop_or_are_refused(started: list) -> None:
    """Only the one loop translates text: asked for 2 processes against a text-only server, the
    start fails naming the option and the endpoint; auto falls back to the one loop."""
    from transformers import AutoTokenizer

    from pytest_mlperf.embedded import MODEL_DIR

    tokenizer = AutoTokenizer.from_pretrained(MODEL_DIR)
    with FakeServer(Behaviour(token_ids=False)) as server:
        with pytest.raises(ValueError, match=rf"--mlperf-client-processes=2: {server.url} takes or answers text"):
            _backend(server, processes=2, tokenizer=tokenizer)
        backend = _backend(server, processes=None, tokenizer=tokenizer)
        started.append(backend)
        assert backend.describe()["client_processes"] == 1 and backend.client_pids() == []


def test_auto_is_one_loop_on_small_machines_and_half_the_cores_on_large() -> None:
    assert [auto_client_processes(c) for c in (1, 2, 4, 7, 8, 16, 32, 128)] == [1, 1, 1, 1, 4, 8, 8, 8]


def test_through_the_plugin_the_record_names_the_processes(pytester: pytest.Pytester) -> None:
    """``--mlperf-client-processes=2``: a VALID Server run, the JSON record says the client ran
    in 2 processes, and the reproduce line carries the option."""
    import json

    import transformers  # noqa: F401 - torch once per process (see test_openai_backend)

    pytester.makepyfile(test_served=BENCHMARK)
    with FakeServer() as server:
        result = pytester.runpytest(
            f"--mlperf-endpoint={server.url}", f"--mlperf-served-model={SERVED_NAME}",
            "--mlperf-client-processes=2", "--mlperf-scenario=Server", "--mlperf-mode=performance",
            "--mlperf-total-samples=16", "--mlperf-setting=server_target_qps=400",
            "--mlperf-setting=min_query_count=460", "--mlperf-setting=min_duration_ms=500",
            f"--mlperf-output={pytester.path / 'results'}", "--mlperf-json=records.json",
            "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*--mlperf-client-processes=2*"])
    records = json.loads((pytester.path / "records.json").read_text())
    text = json.dumps(records)
    assert '"client_processes": 2' in text and "in 2 processes" in text


@pytest.mark.parametrize(("value", "message"), [
    ("0", "*--mlperf-client-processes*expected auto or a positive number of processes*"),
    ("many", "*--mlperf-client-processes*expected auto or a positive number of processes*"),
])
def test_option_mistakes_are_usage_errors(pytester: pytest.Pytester, value: str, message: str) -> None:
    pytester.makepyfile(test_served=BENCHMARK)
    result = pytester.runpytest("--mlperf-endpoint=http://127.0.0.1:9", f"--mlperf-served-model={SERVED_NAME}",
                                f"--mlperf-client-processes={value}", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
