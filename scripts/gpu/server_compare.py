"""H200: Server and Interactive through the plugin (run_loadgen + VllmBackend), on the
prompts, engine arguments and loadgen seeds of probe_server.py, so the two compare point by point.

    MODEL_DIR=/tmp/llama8b_dummy PYTHONPATH=/tmp/site python3 scripts/gpu/server_compare.py
Env: SERVER_QPS ("44,48"), INTERACTIVE_QPS ("34,37"), DUR_MS (60000), NQ (1000), N (2000),
EAGER (0), SEEDS ("probe": TestSettings' default seeds as probe_server.py has them; "conf":
mlperf.conf's), ENGINE_ARGS (JSON over the defaults), TINY=1 (CPU dry run).
Settings otherwise are the official ones (mlperf.conf for llama3_1-8b and -interactive:
TTFT/TPOT limits, p99, token latencies), with min_duration DUR_MS and min_query_count NQ.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from common import emit, engine_args_from_env, model_dir, server_prompts

from pytest_mlperf.backends.base import GenerationConfig, SystemSpec
from pytest_mlperf.backends.vllm_backend import VllmBackend
from pytest_mlperf.core.vocabulary import Mode, Profile, Scenario
from pytest_mlperf.loadgen.runner import run_loadgen
from pytest_mlperf.loadgen.settings import SettingsPlan


def probe_seeds() -> dict[str, int]:
    import mlperf_loadgen as lg

    defaults = lg.TestSettings()
    return {k: getattr(defaults, k) for k in ("qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed")}


def main() -> None:
    n = int(os.environ.get("N", "2000"))
    prompts = server_prompts(n)
    args = engine_args_from_env({
        "max_model_len": 2048, "dtype": "bfloat16", "seed": 0,
        "enforce_eager": os.environ.get("EAGER", "0") == "1", "load_format": "dummy",
    })
    backend = VllmBackend(SystemSpec.local(model_dir()), args, GenerationConfig())
    t0 = time.time()
    backend.start()
    backend.prepare(Scenario.SERVER)  # starts the AsyncLLM
    emit(what="startup_s", value=round(time.time() - t0, 1), **backend.describe())
    # The probe's warm-up: 64 prompts through the engine before loadgen starts.
    backend._generate_all(prompts[:64], lambda i, tokens: None)  # warm-up

    seeds = probe_seeds() if os.environ.get("SEEDS", "probe") == "probe" else {}
    workdir = Path(tempfile.mkdtemp(prefix="server_compare_"))
    plan_runs = [(Scenario.SERVER, q) for q in os.environ.get("SERVER_QPS", "44,48").split(",") if q] + [
        (Scenario.INTERACTIVE, q) for q in os.environ.get("INTERACTIVE_QPS", "34,37").split(",") if q
    ]
    for i, (scenario, qps) in enumerate(plan_runs):
        plan = SettingsPlan(
            benchmark="llama3.1-8b", scenario=scenario, profile=Profile.OFFICIAL,
            total_count=n, performance_count=n,
            cli_overrides={"server_target_qps": float(qps),
                           "min_duration_ms": int(os.environ.get("DUR_MS", "60000")),
                           "min_query_count": int(os.environ.get("NQ", "1000")), **seeds,
                           **json.loads(os.environ.get("SETTINGS", "{}"))},
        )
        result = run_loadgen(plan=plan, mode=Mode.PERFORMANCE, backend=backend, prompts=prompts,
                             outdir=workdir / f"{i}_{scenario.value}_{qps}")
        f, ts = result.figures, plan.build(Mode.PERFORMANCE)
        emit(what="plugin_" + scenario.value.lower(), qps=float(qps), validity=result.validity,
             reason=result.invalid_reason, flags=result.flags,
             tokens_per_s=f.tokens_per_second, samples_per_s=f.samples_per_second,
             ttft_p99_ms=round((f.ttft_ns.p99 or 0) / 1e6, 1),
             tpot_p99_ms=round((f.tpot_ns.p99 or 0) / 1e6, 2),
             queries=f.query_count, out_tokens=result.output_tokens,
             tokens_per_query=round(result.output_tokens / max(1, f.query_count or 1), 1),
             wall_s=round(result.wall_seconds, 1), backend_error=result.backend_error,
             loadgen_errors=list(result.loadgen_errors),
             limits_ms=(ts.ttft_latency / 1e6, ts.tpot_latency / 1e6))
    backend.close()


if __name__ == "__main__":
    main()
