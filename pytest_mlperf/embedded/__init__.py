"""The embedded default: a tiny Llama, its tokenizer and a sample set in cnn_eval.json's schema.

With no model or data set given, the plugin runs on these, so CI needs neither a GPU nor a
download. The model was trained by :mod:`pytest_mlperf.embedded.build` on synthetic news from
:mod:`pytest_mlperf.embedded.news` and really summarizes the held-out sample set, so the
accuracy gate means something: a backend that garbles, truncates or mis-decodes tokens scores
below 99% of the model's own baseline. That baseline is kept per sample, so the figures any
subset of the records must reach are exact (:func:`baseline_for`). Importing this package
reads nothing and imports no torch or numpy.

Layer 1 (with ``data/`` and ``accuracy/``): may import ``core``, ``data`` and ``accuracy``,
nothing higher; :mod:`.build` is a program.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_mlperf.accuracy.scores import AccuracyScores
    from pytest_mlperf.accuracy.targets import Baseline

__all__ = [
    "BASELINE_PATH", "DATASET_PATH", "DATASET_SHA256", "MODEL_DIR", "baseline", "baseline_for",
    "expected_for", "is_embedded_dataset", "is_embedded_model", "sha256_file",
]

_HERE = Path(__file__).resolve().parent

#: Loadable offline by ``AutoModelForCausalLM``/``AutoTokenizer.from_pretrained`` and vLLM.
MODEL_DIR: Path = _HERE / "model"
#: 256 held-out records: ``{"instruction": {"llama": ...}, "input", "tok_input", "output"}``.
DATASET_PATH: Path = _HERE / "data" / "cnn_eval_sample.json"
#: The embedded model's own greedy scores on :data:`DATASET_PATH` (transformers, fp32): the
#: summary figures, and under ``per_sample`` each record's figures in data-set order.
BASELINE_PATH: Path = _HERE / "data" / "baseline.json"

_WEIGHTS = "model.safetensors"
_ROUGE_KEYS = ("rouge1", "rouge2", "rougeL", "rougeLsum")
NAME = "embedded model on the embedded set"


def __getattr__(name: str) -> Any:
    # DATASET_SHA256 is computed on first use: importing the package reads nothing.
    if name == "DATASET_SHA256":
        return _dataset_sha256()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def sha256_file(path: str | Path) -> str:
    """The hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.cache
def _dataset_sha256() -> str:
    return sha256_file(DATASET_PATH)


def is_embedded_dataset(sha256: str) -> bool:
    """Whether a data set whose file bytes hash to ``sha256`` is the embedded sample set,
    whatever its file is called or wherever it lies: identity by content, not by name."""
    return sha256.lower() == _dataset_sha256()


@functools.cache
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


def is_embedded_model(path: str | Path | None) -> bool:
    """Whether ``path`` is the embedded model: the same folder, or a folder (or weights file)
    whose ``model.safetensors`` has the embedded weights' bytes. A hub name, a missing path
    or weights of another size are not; only a file of the very size is hashed (cached)."""
    if path is None:
        return False
    try:
        candidate = Path(path).expanduser().resolve()
        if candidate == MODEL_DIR.resolve():
            return True
        weights = candidate / _WEIGHTS if candidate.is_dir() else candidate
        ours = MODEL_DIR / _WEIGHTS
        stat, our_stat = weights.stat(), ours.stat()
    except (OSError, ValueError):
        return False
    if stat.st_size != our_stat.st_size:
        return False
    theirs = _file_sha256(str(weights), stat.st_size, stat.st_mtime_ns)
    return theirs == _file_sha256(str(ours), our_stat.st_size, our_stat.st_mtime_ns)


@functools.cache
def _recorded() -> dict:
    return json.loads(BASELINE_PATH.read_text(encoding="utf-8"))


def baseline() -> dict:
    """The reference scores of the embedded model on its whole sample set: ``rouge1``,
    ``rouge2``, ``rougeL``, ``rougeLsum`` (mean F x 100), ``gen_len`` (characters),
    ``gen_num`` and ``gen_tok_len`` (generated tokens, EOS included). A fresh dict on every
    call, without the per-sample values (see :func:`baseline_for`)."""
    summary = json.loads(BASELINE_PATH.read_text(encoding="utf-8"))
    summary.pop("per_sample", None)
    return summary


def _per_sample() -> dict:
    per_sample = _recorded().get("per_sample")
    if per_sample is None:
        raise ValueError(f"{BASELINE_PATH} has no per-sample values: re-measure it with "
                         "python -m pytest_mlperf.embedded.build --baseline-only")
    return per_sample


def expected_for(indices: Sequence[int]) -> AccuracyScores:
    """The scores the embedded model's greedy outputs for these records (QSL indices) give,
    reduced in the order given as :func:`pytest_mlperf.accuracy.scores.aggregate` reduces an
    accuracy log: pass a log's order to get its figures bit for bit. Another order of the same
    records changes the unrounded means in the last bits only (1 ulp measured on 256), so a
    4-decimal figure differs only if a mean lies that close to a rounding half."""
    from pytest_mlperf.accuracy.scores import aggregate

    per_sample = _per_sample()
    total = len(per_sample["gen_len"])
    order = [int(i) for i in indices]
    if not order:
        raise ValueError("no samples: the embedded baseline needs at least one record index")
    if len(set(order)) != len(order):
        raise ValueError("repeated record indices: an accuracy log scores each record once")
    outside = [i for i in order if not 0 <= i < total]
    if outside:
        raise ValueError(f"record indices {outside[:5]} are outside the embedded set "
                         f"(0..{total - 1})")
    columns = [per_sample[key] for key in _ROUGE_KEYS]
    rows = [tuple(column[i] for column in columns) for i in order]
    return aggregate(rows, gen_len=sum(per_sample["gen_len"][i] for i in order),
                     gen_tok_len=sum(per_sample["gen_tok_len"][i] for i in order))


def baseline_for(indices: Sequence[int]) -> Baseline:
    """The embedded model's exact figures for these records (QSL indices), as a
    :class:`~pytest_mlperf.accuracy.targets.Baseline` of ``samples=len(indices)`` whose name
    says which records; ROUGE and ``gen_len`` are checked, ratio 0.99. Figures are reduced in
    the order given (see :func:`expected_for`); ``range(n)`` is QSL order."""
    from pytest_mlperf.accuracy.targets import Baseline

    expected = expected_for(indices)
    total = len(_per_sample()["gen_len"])
    name = NAME if expected.gen_num == total else (
        f"{NAME}, {expected.gen_num:,} of {total:,} records ({_describe(indices)})")
    return Baseline(name=name, rouge1=expected.rouge1, rouge2=expected.rouge2,
                    rougeL=expected.rougeL, rougeLsum=expected.rougeLsum,
                    gen_len=expected.gen_len, samples=expected.gen_num)


def _describe(indices: Sequence[int], most: int = 4) -> str:
    """``0-63`` or ``3, 7, 10-19, ...``: the records as runs of consecutive indices."""
    runs: list[list[int]] = []
    for i in sorted(int(i) for i in indices):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    text = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs[:most])
    return text + (", ..." if len(runs) > most else "")
