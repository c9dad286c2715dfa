"""The scores of one accuracy run, aggregated and printed as the reference does.

The reference reduces the per-sample F-measures with ``round(np.mean(v) * 100, 4)``: NumPy's
pairwise summation over the samples in log order, then NumPy's rounding (which is not
Python's: ``np.round`` scales, rounds half to even and scales back). :func:`aggregate` runs
that very expression, so the figures agree to the last printed digit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

ROUGE_KEYS = ("rouge1", "rouge2", "rougeL", "rougeLsum")


@dataclass(frozen=True)
class AccuracyScores:
    """ROUGE F-measures x 100 (rounded to 4 decimals), characters and count of predictions.

    ``gen_tok_len`` (generated tokens in total) is known only when scoring an accuracy log;
    the llama2-70b targets check its per-sample mean, ``tokens_per_sample``.
    """

    rouge1: float
    rouge2: float
    rougeL: float  # noqa: N815 - the metric's name
    rougeLsum: float  # noqa: N815 - the metric's name
    gen_len: int
    gen_num: int
    gen_tok_len: int | None = None

    @property
    def tokens_per_sample(self) -> float | None:
        """``round(gen_tok_len / gen_num, 1)``, as the llama2-70b evaluation prints it."""
        if self.gen_tok_len is None or not self.gen_num:
            return None
        return round(self.gen_tok_len / self.gen_num, 1)

    def as_dict(self) -> dict[str, Any]:
        """The reference's result keys (plus the token counts when known), JSON-able."""
        out: dict[str, Any] = {k: getattr(self, k) for k in ROUGE_KEYS}
        out["gen_len"] = self.gen_len
        out["gen_num"] = self.gen_num
        if self.gen_tok_len is not None:
            out["gen_tok_len"] = self.gen_tok_len
            out["tokens_per_sample"] = self.tokens_per_sample
        return out

    def reference_line(self, benchmark: str = "llama3.1-8b") -> str:
        """The dict line the benchmark's evaluation script prints (and ``accuracy.txt`` holds).

        llama3.1-8b: ``{'rouge1': '38.7898', ..., 'gen_len': 8163079, 'gen_num': 13368}``
        (ROUGE figures as strings); llama2-70b: ROUGE figures as numbers, then
        ``gen_tok_len`` and ``tokens_per_sample``.
        """
        llama2 = benchmark.startswith("llama2-70b")
        out: dict[str, Any] = {k: getattr(self, k) if llama2 else f"{getattr(self, k)}"
                               for k in ROUGE_KEYS}
        out["gen_len"] = self.gen_len
        out["gen_num"] = self.gen_num
        if llama2 and self.gen_tok_len is not None:
            out["gen_tok_len"] = self.gen_tok_len
            out["tokens_per_sample"] = self.tokens_per_sample
        return repr(out)


def aggregate(fmeasures: Sequence[Sequence[float]], gen_len: int,
              gen_tok_len: int | None = None) -> AccuracyScores:
    """Reduce per-sample ``(rouge1, rouge2, rougeL, rougeLsum)`` F-measures, in log order."""
    import numpy as np

    if not fmeasures:
        raise ValueError("no predictions to score")
    figures: dict[str, float] = {}
    for column, key in enumerate(ROUGE_KEYS):
        # One contiguous float64 array per metric, as np.mean(list) builds: same summation tree.
        values = np.array([row[column] for row in fmeasures], dtype=np.float64)
        figures[key] = float(round(np.mean(values) * 100, 4))
    return AccuracyScores(**figures, gen_len=gen_len, gen_num=len(fmeasures),
                          gen_tok_len=gen_tok_len)
