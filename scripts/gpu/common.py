"""Shared by the H200 scripts: the Llama-3.1-8B-shaped config (dummy weights), the probes'
prompt generators (same seeds, same prompts), and JSON-line output."""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

LLAMA_8B = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama",
    "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
    "max_position_embeddings": 131072, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
    "rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "hidden_act": "silu", "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "bos_token_id": 128000, "eos_token_id": 128009, "attention_bias": False, "mlp_bias": False,
    "head_dim": 128,
}
#: TINY=1: the same architecture, small enough for a CPU dry run of these scripts.
TINY = {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
        "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 64}


def emit(**fields) -> None:
    print("RESULT " + json.dumps(fields), flush=True)


def model_dir() -> Path:
    """A folder holding only config.json (weights: load_format="dummy", no tokenizer)."""
    tiny = os.environ.get("TINY") == "1"
    d = Path(os.environ.get("MODEL_DIR", "/tmp/llama8b_tiny" if tiny else "/tmp/llama8b_dummy"))
    d.mkdir(parents=True, exist_ok=True)
    cfg = {**LLAMA_8B, **(TINY if tiny else {})}
    (d / "config.json").write_text(json.dumps(cfg))
    return d


def offline_prompts(n: int, seed: int = 0) -> list[list[int]]:
    """probe_offline.py's prompts: lengths 400-1400, token ids 1000-120000."""
    rng = random.Random(seed)
    lens = [rng.randint(400, 1400) for _ in range(n)]
    return [[rng.randint(1000, 120000) for _ in range(length)] for length in lens]


def server_prompts(n: int, vocab: int = 120000, lo: int = 400, hi: int = 1400) -> list[list[int]]:
    """probe_server.py's prompts, drawn in the same order from the same seed."""
    rng = random.Random(0)
    return [[rng.randint(10, vocab - 1) for _ in range(rng.randint(lo, hi))] for _ in range(n)]


def engine_args_from_env(defaults: dict) -> dict:
    """defaults, then ENGINE_ARGS (a JSON object) over them."""
    return {**defaults, **json.loads(os.environ.get("ENGINE_ARGS", "{}"))}
