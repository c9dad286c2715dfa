"""The transformers backend for real: the embedded model through the real loadgen."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("transformers")

from pytest_mlperf import embedded  # noqa: E402
from pytest_mlperf.backends.base import GenerationConfig, SystemSpec  # noqa: E402
from pytest_mlperf.backends.hf import HFBackend  # noqa: E402
from pytest_mlperf.core.vocabulary import Mode, Profile, Scenario  # noqa: E402
from pytest_mlperf.data.dataset import load_dataset  # noqa: E402
from pytest_mlperf.loadgen.runner import run_loadgen  # noqa: E402
from pytest_mlperf.loadgen.settings import SettingsPlan  # noqa: E402

N = 12
SYSTEM = SystemSpec.local(embedded.MODEL_DIR, embedded=True)


@pytest.fixture(scope="module")
def backend():
    b = HFBackend(SYSTEM, {"batch_size": 8}, GenerationConfig())
    b.start()
    yield b
    b.close()


def test_describe(backend) -> None:
    import transformers

    info = backend.describe()
    assert info["engine"] == "transformers.generate"
    assert info["engine_version"] == transformers.__version__
    assert info["device"] == "cpu"
    assert info["engine_args"] == {"batch_size": 8, "threads": backend.threads, "device": "cpu",
                                   "dtype": "float32"}


def test_served_system_is_refused_at_start() -> None:
    b = HFBackend(SystemSpec.served("llama", ["http://node1:8000"]))
    with pytest.raises(ValueError, match="served model.*'openai'"):
        b.start()


@pytest.fixture(scope="module")
def prompts():
    return load_dataset(embedded.DATASET_PATH, limit=N).prompts()


def reference_greedy(prompt: list[int]) -> list[int]:
    """One prompt at a time, no padding: what batched generation must reproduce."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(embedded.MODEL_DIR, dtype=torch.float32).eval()
    with torch.inference_mode():
        out = model.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=128,
                             min_new_tokens=1)
    new = out[0, len(prompt):].tolist()
    eos_id = model.generation_config.eos_token_id
    eos = set(eos_id if isinstance(eos_id, list) else [eos_id])
    for i, t in enumerate(new):
        if t in eos:
            return new[: i + 1]
    return new


def test_offline_accuracy_log_holds_greedy_outputs(backend, prompts, tmp_path: Path) -> None:
    plan = SettingsPlan("llama3.1-8b", Scenario.OFFLINE, Profile.QUICK, N, N)
    result = run_loadgen(plan=plan, mode=Mode.ACCURACY, backend=backend, prompts=prompts,
                         outdir=tmp_path / "acc")
    assert result.backend_error is None and result.loadgen_errors == ()
    entries = {e["qsl_idx"]: bytes.fromhex(e["data"])
               for e in json.loads(result.accuracy_log.read_text())}
    assert sorted(entries) == list(range(N))
    import numpy as np

    for idx in (0, 5):
        got = np.frombuffer(entries[idx], dtype=np.int32).tolist()
        assert got == reference_greedy(list(prompts[idx]))


def test_offline_performance_run_is_valid(backend, prompts, tmp_path: Path) -> None:
    plan = SettingsPlan("llama3.1-8b", Scenario.OFFLINE, Profile.QUICK, N, N)
    result = run_loadgen(plan=plan, mode=Mode.PERFORMANCE, backend=backend, prompts=prompts,
                         outdir=tmp_path / "perf")
    assert result.validity == "VALID", result.invalid_reason
    assert (result.figures.tokens_per_second or 0) > 0


@pytest.mark.latency
def test_server_run_meets_latency_limits_with_first_tokens(
    backend, prompts, tmp_path: Path
) -> None:
    """Streaming through the generation streamer: loadgen measures real TTFT and TPOT. (Too
    few queries here for early stopping, which the vLLM Server tests and benchmarks cover.)"""
    overrides = {"server_target_qps": 2, "min_duration_ms": 3000, "min_query_count": N}
    plan = SettingsPlan("llama3.1-8b", Scenario.SERVER, Profile.QUICK, N, N,
                        cli_overrides=overrides)
    result = run_loadgen(plan=plan, mode=Mode.PERFORMANCE, backend=backend, prompts=prompts,
                         outdir=tmp_path / "perf")
    assert result.backend_error is None and result.loadgen_errors == ()
    assert result.flags["perf_constraints_met"], result.invalid_reason
    ttft, tpot = result.figures.ttft_ns.p99, result.figures.tpot_ns.p99
    assert ttft is not None and tpot is not None
    assert 0 < ttft < 2e9
    assert 0 < tpot < ttft


# -- threads ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("threads", "env", "cores", "device", "expected"),
    [
        (None, None, 2, "cpu", 1),  # a small CPU: one thread
        (None, None, 4, "cpu", 1),
        (None, None, 5, "cpu", None),  # a big one: torch's default
        (None, None, 2, "cuda", None),
        (3, None, 2, "cpu", 3),  # the user's engine argument wins
        ("2", "1", 2, "cpu", 2),
        (None, "2", 2, "cpu", 2),  # then OMP_NUM_THREADS
        (None, "3", 64, "cpu", 3),
        (None, "4,2", 2, "cpu", None),  # nested levels: left to OpenMP
    ],
)
def test_generation_threads(monkeypatch, threads, env, cores, device, expected) -> None:
    from pytest_mlperf.backends import hf
    from pytest_mlperf.core import cpu

    monkeypatch.setattr(cpu, "usable_cores", lambda: cores)
    if env is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", env)
    assert hf.generation_threads(threads, device) == expected


def generate_on_worker(backend: HFBackend, prompts) -> tuple[list[list[int]], set[tuple[str, int]]]:
    """Every prompt through ``issue``; the outputs in order, and (thread name, torch's thread
    count) as seen inside ``generate``."""
    import threading

    import torch

    seen: set[tuple[str, int]] = set()
    model = backend._model
    original = model.generate

    def spy(*args, **kwargs):
        seen.add((threading.current_thread().name, torch.get_num_threads()))
        return original(*args, **kwargs)

    outputs: dict[int, list[int]] = {}
    done = threading.Event()

    class Collect:
        def first_token(self, query, token_id) -> None:
            pass

        def complete(self, query, tokens) -> None:
            outputs[query.sample_index] = list(tokens)
            if len(outputs) == len(prompts):
                done.set()

        def fail(self, error) -> None:
            outputs[-1] = [repr(error)]
            done.set()

    from pytest_mlperf.backends.base import Query

    model.generate = spy
    try:
        backend.issue([Query(i, i, p) for i, p in enumerate(prompts)], Collect())
        assert done.wait(120)
    finally:
        del model.generate
    assert -1 not in outputs, outputs.get(-1)
    return [outputs[i] for i in range(len(prompts))], seen


def test_worker_generates_with_its_thread_count_and_the_same_tokens(monkeypatch, prompts) -> None:
    """The thread count is applied on the generating thread itself (one on a small CPU unless
    ``threads`` says otherwise), and the outputs do not depend on it."""
    import threading

    import torch

    from pytest_mlperf.core import cpu

    monkeypatch.setattr(cpu, "usable_cores", lambda: 2)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)

    def fresh_thread_default() -> int:
        box: list[int] = []
        t = threading.Thread(target=lambda: box.append(torch.get_num_threads()))
        t.start()
        t.join()
        return box[0]

    default_before = fresh_thread_default()
    results = {}
    for label, args in (("default", {}), ("threads=2", {"threads": 2})):
        b = HFBackend(SYSTEM, {"batch_size": 8, **args}, GenerationConfig())
        b.start()
        try:
            results[label] = generate_on_worker(b, prompts)
        finally:
            b.close()
    assert results["default"][1] == {("mlperf-hf", 1)}
    assert results["threads=2"][1] == {("mlperf-hf", 2)}
    assert results["default"][0] == results["threads=2"][0]
    # close() gives torch's process-wide default (what threads started later get) back
    assert fresh_thread_default() == default_before
