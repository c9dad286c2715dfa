"""Accuracy targets and the check against them, as the MLPerf submission checker applies them.

Values from ``tools/submission/submission_checker/constants.py`` (``accuracy-target`` and
``accuracy-upper-limit``). The checker passes a ROUGE figure when ``value >= ratio x target``
and a length when ``0.9 x target <= value <= 1.1 x target``, comparing the 4-decimal figures
of ``accuracy.txt``; :func:`check` does the same with the same products.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from pytest_mlperf.accuracy.scores import ROUGE_KEYS, AccuracyScores

#: the length window of the checker, around the target generated length
WINDOW = (0.9, 1.1)


@dataclass(frozen=True)
class Baseline:
    """Reference figures an accuracy run must reach. ``None`` means "not checked".

    ROUGE figures must be at least ``ratio`` x the baseline; ``gen_len`` and
    ``tokens_per_sample`` must lie within 0.9x..1.1x of it. ``samples`` is the number of
    samples the figures are for (a data set's full count): ``gen_len`` is a total over them,
    the other figures are means. ``None``: unknown, and ``gen_len`` is never scaled.
    """

    name: str
    rouge1: float | None = None
    rouge2: float | None = None
    rougeL: float | None = None  # noqa: N815 - the metric's name
    rougeLsum: float | None = None  # noqa: N815 - the metric's name
    gen_len: int | None = None
    tokens_per_sample: float | None = None
    ratio: float = 0.99
    samples: int | None = None

    def __post_init__(self) -> None:
        if not 0 < self.ratio <= 1:
            raise ValueError(f"baseline {self.name!r}: ratio must be in (0, 1], not {self.ratio}")
        if self.samples is not None and self.samples < 1:
            raise ValueError(f"baseline {self.name!r}: samples must be >= 1, not {self.samples}")

    def scaled_to(self, n: int) -> Baseline:
        """This baseline for a run over ``n`` samples: ``gen_len`` (a total) becomes
        ``round(gen_len * n / samples)``; ROUGE figures and ``tokens_per_sample`` are means and
        stay as they are. Unchanged when ``n == samples`` or ``gen_len`` or ``samples`` is
        unknown. The one gen_len rule of the plugin and of ``python -m pytest_mlperf.accuracy``.
        """
        if n < 1:
            raise ValueError(f"baseline {self.name!r}: cannot scale to {n} samples")
        if self.gen_len is None or self.samples is None or n == self.samples:
            return self
        name = f"{self.name}, gen_len scaled to {n:,} of {self.samples:,} samples"
        return replace(self, name=name, gen_len=round(self.gen_len * n / self.samples), samples=n)

    def with_ratio(self, ratio: float | None) -> Baseline:
        """This baseline with each ROUGE figure to reach at ``ratio`` x (``None``: its own)."""
        return self if ratio is None or ratio == self.ratio else replace(self, ratio=ratio)

    @classmethod
    def from_scores(cls, name: str, scores: AccuracyScores, *, ratio: float = 0.99,
                    gen_len: bool = True) -> Baseline:
        """A baseline from a run's own scores (a model without MLCommons targets): all four
        ROUGE figures, and its generated length unless ``gen_len=False``; ``samples`` is the
        run's ``gen_num``."""
        return cls(name=name, rouge1=scores.rouge1, rouge2=scores.rouge2, rougeL=scores.rougeL,
                   rougeLsum=scores.rougeLsum, gen_len=scores.gen_len if gen_len else None,
                   ratio=ratio, samples=scores.gen_num)


#: The MLCommons targets, by submission-checker benchmark name, each with its data set's
#: size: cnn_eval.json (13,368), sample_cnn_eval_5000.json (5,000), OpenOrca (24,576).
TARGETS: dict[str, Baseline] = {
    "llama3.1-8b": Baseline("llama3.1-8b", 38.7792, 15.9075, 24.4957, 35.793, gen_len=8167644,
                            samples=13368),
    "llama3.1-8b-edge": Baseline("llama3.1-8b-edge", 39.06, 16.1147, 24.6375, 36.124,
                                 gen_len=3051113, samples=5000),
    "llama2-70b-99": Baseline("llama2-70b-99", 44.4312, 22.0352, 28.6162,
                              tokens_per_sample=294.45, samples=24576),
    "llama2-70b-99.9": Baseline("llama2-70b-99.9", 44.4312, 22.0352, 28.6162,
                                tokens_per_sample=294.45, ratio=0.999, samples=24576),
}


def _number(x: float) -> str:
    if isinstance(x, int) or float(x).is_integer():
        return str(int(x))
    return f"{x:.4f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class Miss:
    """One figure outside its bound. ``factor`` x ``target`` is ``bound``."""

    metric: str
    value: float
    bound: float
    kind: Literal["min", "window"]
    factor: float | None = None
    target: float | None = None

    def __str__(self) -> str:
        value, bound = _number(self.value), _number(self.bound)
        if value == bound:  # 4 decimals hid the difference: show both in full
            value, bound = repr(self.value), repr(self.bound)
        op = "<" if self.value < self.bound else ">"
        text = f"{self.metric} {value} {op} {bound}"
        if self.factor is not None and self.target is not None:
            text += f" ({self.factor:g} x {_number(self.target)})"
        return text


def check(scores: AccuracyScores, baseline: Baseline, ratio: float | None = None) -> list[Miss]:
    """The figures of ``scores`` that miss ``baseline``; empty when the run passes.

    ``ratio`` overrides ``baseline.ratio`` for the ROUGE figures (the length window stays
    0.9x..1.1x). A baseline on ``tokens_per_sample`` needs scores from an accuracy log.
    """
    factor = baseline.ratio if ratio is None else ratio
    misses: list[Miss] = []
    for key in ROUGE_KEYS:
        target = getattr(baseline, key)
        if target is None:
            continue
        value = getattr(scores, key)
        bound = target * factor
        if not value >= bound:
            misses.append(Miss(key, value, bound, "min", factor, target))
    for key in ("gen_len", "tokens_per_sample"):
        target = getattr(baseline, key)
        if target is None:
            continue
        value = getattr(scores, key)
        if value is None:
            raise ValueError(
                f"baseline {baseline.name!r} checks {key}, which these scores lack "
                "(score an accuracy log with score_log to count tokens)"
            )
        low, high = target * WINDOW[0], target * WINDOW[1]
        if not value >= low:
            misses.append(Miss(key, value, low, "window", WINDOW[0], target))
        elif value > high:
            misses.append(Miss(key, value, high, "window", WINDOW[1], target))
    return misses
