"""H200: Offline tokens/s through the plugin against raw LLM.generate, one engine, one lease.

    PYTHONPATH=/tmp/site python3 scripts/gpu/offline_compare.py
Prints offline_ratio (plugin / raw tokens/s; target 0.99) and, per plugin pass, when the first,
median and last queries reached loadgen (the backend completes each as it finishes).
Env: N (prompts per pass, 1000), ROUNDS (raw/plugin pairs, 2), TP (1), ENGINE_ARGS (JSON over
the defaults below), TINY=1 (a small model, for a CPU dry run). Prefix caching is off, so every
pass does the same work on the same prompts (probe_offline.py's generator).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from common import engine_args_from_env, model_dir, offline_prompts


def main() -> None:
    import bench_harness  # scripts/, put on sys.path by common

    tp = int(os.environ.get("TP", "1"))
    args = engine_args_from_env({
        "load_format": "dummy", "dtype": "bfloat16", "max_model_len": 2048,
        "gpu_memory_utilization": 0.9, "max_num_seqs": 512, "max_num_batched_tokens": 8192,
        "enable_prefix_caching": False, "tensor_parallel_size": tp,
        **({"disable_custom_all_reduce": True} if tp > 1 else {}),
    })
    prompts = offline_prompts(int(os.environ.get("N", "1000")))
    bench_harness.bench_offline(model_dir(), prompts, int(os.environ.get("ROUNDS", "2")), args,
                                Path(tempfile.mkdtemp(prefix="offline_compare_")), warmup=64)


if __name__ == "__main__":
    main()
