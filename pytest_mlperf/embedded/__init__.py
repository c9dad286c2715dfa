"""The embedded default: a tiny Llama, its tokenizer and a sample set in cnn_eval.json's schema.

With no model or data set given, the plugin runs on these, so CI needs neither a GPU nor a
download. The model was trained by :mod:`pytest_mlperf.embedded.build` on synthetic news from
:mod:`pytest_mlperf.embedded.news` and really summarizes the held-out sample set, so the
accuracy gate means something: a backend that garbles, truncates or mis-decodes tokens scores
below 99% of :func:`baseline`. Importing this package reads nothing and imports no torch.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["BASELINE_PATH", "DATASET_PATH", "MODEL_DIR", "baseline"]

_HERE = Path(__file__).resolve().parent

#: Loadable offline by ``AutoModelForCausalLM``/``AutoTokenizer.from_pretrained`` and vLLM.
MODEL_DIR: Path = _HERE / "model"
#: 256 held-out records: ``{"instruction": {"llama": ...}, "input", "tok_input", "output"}``.
DATASET_PATH: Path = _HERE / "data" / "cnn_eval_sample.json"
#: The embedded model's own greedy scores on :data:`DATASET_PATH` (transformers, fp32).
BASELINE_PATH: Path = _HERE / "data" / "baseline.json"


def baseline() -> dict:
    """The reference scores of the embedded model on its sample set: ``rouge1``, ``rouge2``,
    ``rougeL``, ``rougeLsum`` (mean F x 100), ``gen_len`` (characters), ``gen_num``, and
    ``tokens_per_sample`` (generated tokens, EOS included). A fresh dict on every call."""
    return json.loads(BASELINE_PATH.read_text(encoding="utf-8"))
