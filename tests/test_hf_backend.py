"""The transformers backend for real: the embedded model through the real loadgen."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("transformers")

from pytest_mlperf import embedded  # noqa: E402
from pytest_mlperf.backends.base import GenerationConfig, ModelSource  # noqa: E402
from pytest_mlperf.backends.hf import HFBackend  # noqa: E402
from pytest_mlperf.dataset import load_dataset  # noqa: E402
from pytest_mlperf.loadgen.runner import run_loadgen  # noqa: E402
from pytest_mlperf.loadgen.settings import Mode, Profile, Scenario, SettingsPlan  # noqa: E402

N = 12


@pytest.fixture(scope="module")
def backend():
    b = HFBackend(ModelSource(embedded.MODEL_DIR, embedded=True, engine_args={"batch_size": 8}), GenerationConfig())
    b.start()
    yield b
    b.close()


@pytest.fixture(scope="module")
def prompts():
    return load_dataset(embedded.DATASET_PATH, limit=N).prompts()


def reference_greedy(prompt: list[int]) -> list[int]:
    """One prompt at a time, no padding: what batched generation must reproduce."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(embedded.MODEL_DIR, dtype=torch.float32).eval()
    with torch.inference_mode():
        out = model.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=128, min_new_tokens=1)
    new = out[0, len(prompt):].tolist()
    eos = set(model.generation_config.eos_token_id if isinstance(model.generation_config.eos_token_id, list) else [model.generation_config.eos_token_id])
    for i, t in enumerate(new):
        if t in eos:
            return new[: i + 1]
    return new


def test_offline_accuracy_log_holds_greedy_outputs(backend, prompts, tmp_path: Path) -> None:
    plan = SettingsPlan("llama3.1-8b", Scenario.OFFLINE, Profile.QUICK, N, N)
    result = run_loadgen(plan=plan, mode=Mode.ACCURACY, backend=backend, prompts=prompts, outdir=tmp_path / "acc")
    assert result.backend_error is None and result.loadgen_errors == ()
    entries = {e["qsl_idx"]: bytes.fromhex(e["data"]) for e in json.loads(result.accuracy_log.read_text())}
    assert sorted(entries) == list(range(N))
    import numpy as np

    for idx in (0, 5):
        got = np.frombuffer(entries[idx], dtype=np.int32).tolist()
        assert got == reference_greedy(list(prompts[idx]))


def test_offline_performance_run_is_valid(backend, prompts, tmp_path: Path) -> None:
    plan = SettingsPlan("llama3.1-8b", Scenario.OFFLINE, Profile.QUICK, N, N)
    result = run_loadgen(plan=plan, mode=Mode.PERFORMANCE, backend=backend, prompts=prompts, outdir=tmp_path / "perf")
    assert result.validity == "VALID", result.invalid_reason
    assert result.figures["tokens_per_second"] > 0


@pytest.mark.latency
def test_server_run_meets_latency_limits_with_first_tokens(backend, prompts, tmp_path: Path) -> None:
    """Streaming through the generation streamer: loadgen measures real TTFT and TPOT. (Too
    few queries here for early stopping, which the vLLM Server tests and benchmarks cover.)"""
    overrides = {"server_target_qps": 2, "min_duration_ms": 3000, "min_query_count": N}
    plan = SettingsPlan("llama3.1-8b", Scenario.SERVER, Profile.QUICK, N, N, cli_overrides=overrides)
    result = run_loadgen(plan=plan, mode=Mode.PERFORMANCE, backend=backend, prompts=prompts, outdir=tmp_path / "perf")
    assert result.backend_error is None and result.loadgen_errors == ()
    assert result.flags["perf_constraints_met"], result.invalid_reason
    assert 0 < result.figures["ttft_p99_ns"] < 2e9
    assert 0 < result.figures["tpot_p99_ns"] < result.figures["ttft_p99_ns"]
