"""Faults inside the real engines: the transformers and vLLM backends on the embedded model,
each with one fault injected where that engine would have it (its start, its generating
thread or event loop, its close), through the plugin as a user runs it. Each faulty test fails
by name in bounded time with its logs kept, its engine is dropped, and the next test runs on a
fresh one. (The same faults with test doubles, every scenario and a few more: test_faults.py.)

Heavy: the hf part restarts the tiny model after every fault (about a second each); the vLLM
part starts a vLLM engine per fault (seconds on a CPU; a streaming engine about 20 s)."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.engine_faults  # once in CI, not under -n 2 (.ci/run)

FAULTY = r'''
import threading
from pathlib import Path

import pytest

from pytest_mlperf.backends.hf import HFBackend


class Twisted:
    """A responder that answers wrongly: twice, or with ids outside the vocabulary."""

    def __init__(self, inner, fault):
        self.inner, self.fault = inner, fault

    def first_token(self, query, token_id):
        self.inner.first_token(query, token_id)

    def complete(self, query, tokens):
        if self.fault == "malformed-ids":
            tokens = [t + 5000 for t in tokens]  # the model has 3072 ids
        self.inner.complete(query, tokens)
        if self.fault == "answers-twice":
            self.inner.complete(query, tokens)

    def fail(self, error):
        self.inner.fail(error)


def inject(base):
    class Faulty(base):
        name = base.name + "-faulty"

        def __init__(self, system, engine_args, generation, tokenizer):
            args = dict(engine_args)
            self.fault = args.pop("fault", None)
            super().__init__(system, args, generation, tokenizer)

        def start(self):
            Path("starts.txt").open("a").write(f"{self.fault}\n")
            if self.fault == "raise-at-start":
                raise RuntimeError("CUDA driver version is insufficient for CUDA runtime version")
            super().start()

        def close(self):
            super().close()
            if self.fault == "raise-at-close":
                raise RuntimeError("engine core died at shutdown")

        def twisted(self, responder):
            if self.fault in ("answers-twice", "malformed-ids"):
                return Twisted(responder, self.fault)
            return responder
    return Faulty


class FaultyHF(inject(HFBackend)):
    def _generate(self, batch):  # the real model, on the backend's worker thread
        if self.fault == "raise-mid-run":
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        if self.fault == "never-answers":
            return  # the batch is dropped: a wedged engine
        super()._generate([(q, self.twisted(r)) for q, r in batch])


BACKENDS = {"hf-faulty": FaultyHF}

try:
    from pytest_mlperf.backends.vllm_backend import VllmBackend
except ImportError:
    pass
else:
    class FaultyVllm(inject(VllmBackend)):
        def _generate_all(self, prompts, done):  # Offline, on the backend's worker thread
            if self.fault == "raise-mid-run":
                raise RuntimeError("EngineDeadError: EngineCore encountered an issue")
            if self.fault == "never-answers":
                threading.Event().wait()
            return super()._generate_all(prompts, done)

        async def _serve(self, query, responder):  # streaming, on the engine's event loop
            if self.fault == "raise-mid-run":
                raise RuntimeError("EngineDeadError: EngineCore encountered an issue")
            if self.fault == "never-answers":
                return
            await super()._serve(query, self.twisted(responder))

        def _generate_batches(self, batches):
            super()._generate_batches([(qs, self.twisted(r)) for qs, r in batches])

    BACKENDS["vllm-faulty"] = FaultyVllm


def pytest_mlperf_make_backend(config, name, scenario, system, engine_args, generation, tokenizer):
    cls = BACKENDS.get(name)
    return None if cls is None else cls(system, engine_args, generation, tokenizer)


def pytest_mlperf_backend_names(config):
    return list(BACKENDS)
'''

MARK = '''dict(benchmark="llama3.1-8b", scenarios=("Offline", "Server", "SingleStream", "Interactive"),
            settings={"server_target_qps": 20})'''

FAULTS = ("raise-at-start", "raise-mid-run", "never-answers", "answers-twice", "malformed-ids", "raise-at-close")
MESSAGES = {
    "raise-at-start": "*failed to start: RuntimeError: CUDA driver version is insufficient*",
    "raise-mid-run": "*engine failed: RuntimeError: *(the engine was closed and dropped*logs kept in*",
    "never-answers": "*engine failed: TimeoutError: the run did not finish within 8 s (--mlperf-run-timeout)*",
    "answers-twice": "*engine failed: BackendFault: query * (sample *): an answer after it was answered already (answered twice)*",
    "malformed-ids": "*engine failed: BackendFault: query * (sample *): *token id * outside the model's vocabulary (3072 ids)*",
    "raise-at-close": "*closing engines failed: closing backend '*-faulty' (*) failed: RuntimeError: engine core died at shutdown*",
}


def _bench(faults_by_scenario: dict[str, str] | None) -> str:
    """One test per fault over every scenario (``None``), or one fault per scenario."""
    lines = ["import pytest", f"MARK = {MARK}",
             "def only(scenario, **kw):\n"
             "    settings = MARK['settings'] if scenario in ('Server', 'Interactive') else {}\n"
             "    return {**MARK, 'scenarios': [scenario], 'settings': settings, **kw}"]
    if faults_by_scenario is None:
        for fault in FAULTS:
            lines += [f"@pytest.mark.mlperf(**MARK, engine_args={{'fault': {fault!r}}})",
                      f"def test_{fault.replace('-', '_')}(mlperf_result): pass"]
    else:
        for scenario, fault in faults_by_scenario.items():
            lines += [f"@pytest.mark.mlperf(**only({scenario!r}, engine_args={{'fault': {fault!r}}}))",
                      f"def test_{fault.replace('-', '_')}(mlperf_result): pass"]
    lines += ["@pytest.mark.mlperf(**MARK)", "def test_next(mlperf_result): pass"]
    return "\n\n".join(lines) + "\n"


def _run(pytester: pytest.Pytester, backend: str, bench: str, scenarios: str) -> tuple[pytest.RunResult, float]:
    pytester.makeconftest(FAULTY)
    pytester.makepyfile(test_bench=bench)
    began = time.monotonic()
    result = pytester.runpytest_subprocess(
        f"--mlperf-backend={backend}", "--mlperf-mode=accuracy", f"--mlperf-scenario={scenarios}",
        "--mlperf-total-samples=8", "--mlperf-run-timeout=8", "--mlperf-engine-timeout=300",
        "--mlperf-output=results", "-p", "no:cacheprovider", "-p", "no:randomly", timeout=900,
    )
    return result, time.monotonic() - began


def _check(result: pytest.RunResult, faults: list[str], pytester: pytest.Pytester) -> None:
    for fault in faults:
        result.stdout.fnmatch_lines([MESSAGES[fault]])
    for fault in set(faults) - {"raise-at-start", "raise-at-close"}:
        # the run's logs are kept, and the engine was dropped: the next test started a fresh one
        assert list((pytester.path / "results").glob(f"test_bench.py_test_{fault.replace('-', '_')}*/run_1/accuracy/mlperf_log_detail.txt"))


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="transformers is not installed")
def test_hf_engine_faults_in_every_scenario(pytester: pytest.Pytester) -> None:
    result, took = _run(pytester, "hf-faulty", _bench(None), "Offline,Server,SingleStream,Interactive")
    # 6 faults x 4 scenarios, then a healthy engine in every scenario; the close fault
    # passes its runs and fails the session's teardown
    result.assert_outcomes(failed=20, passed=8, errors=1)
    _check(result, list(FAULTS), pytester)
    assert took < 420, took
    starts = (pytester.path / "starts.txt").read_text().split()
    assert starts.count("raise-mid-run") == 4  # a fresh engine after each failed run
    assert starts.count("raise-at-start") == 1  # a start that failed is not retried


ROTATION = {"Offline": "raise-mid-run", "Server": "answers-twice", "SingleStream": "malformed-ids",
            "Interactive": "never-answers"}


@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm is not installed")
def test_vllm_engine_faults_in_every_scenario(pytester: pytest.Pytester) -> None:
    """One fault per scenario (a vLLM engine start costs seconds, a streaming one ~20 s on a
    CPU), start and close faults in Offline; then a healthy engine runs Offline and Server."""
    bench = _bench(ROTATION).replace(
        "@pytest.mark.mlperf(**MARK)\n\ndef test_next",
        "@pytest.mark.mlperf(**only('Offline', engine_args={'fault': 'raise-at-start'}))\n\n"
        "def test_raise_at_start(mlperf_result): pass\n\n\n"
        "@pytest.mark.mlperf(**only('Offline', engine_args={'fault': 'raise-at-close'}))\n\n"
        "def test_raise_at_close(mlperf_result): pass\n\n\n"
        "@pytest.mark.mlperf(**{**MARK, 'scenarios': ['Offline', 'Server']})\n\ndef test_next")
    result, took = _run(pytester, "vllm-faulty", bench, "Offline,Server,SingleStream,Interactive")
    # per scenario: its fault fails, the healthy engine passes; the other scenarios of a
    # one-scenario test are skipped; the start fault fails, the close fault fails teardown
    result.assert_outcomes(failed=5, passed=3, skipped=20, errors=1)
    _check(result, [*ROTATION.values(), "raise-at-start", "raise-at-close"], pytester)
    assert took < 600, took


@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm is not installed")
def test_vllm_refuses_weights_that_do_not_match_the_config(tmp_path: Path) -> None:
    import json
    import shutil

    from pytest_mlperf import embedded
    from pytest_mlperf.backends.base import SystemSpec
    from pytest_mlperf.backends.vllm_backend import VllmBackend
    from pytest_mlperf.backends.weights import WeightsError

    folder = tmp_path / "model"
    shutil.copytree(embedded.MODEL_DIR, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(architectures=["Qwen2ForCausalLM"], model_type="qwen2")  # vLLM loads it silently
    (folder / "config.json").write_text(json.dumps(config))
    backend = VllmBackend(SystemSpec.local(folder))
    with pytest.raises(WeightsError, match=r"12 weight\(s\) missing from the checkpoint.*q_proj.bias"):
        backend.start()
    assert backend.llm is None and backend.async_engine is None  # refused before any engine
