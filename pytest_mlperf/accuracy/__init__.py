"""Accuracy you can trust: the MLCommons ROUGE recipe, offline, faster, figure for figure.

``score_log`` gives the figures ``language/llama3.1-8b/evaluation.py`` prints for the same
accuracy log, to the last printed decimal, with no download (no ``nltk.download``) and on
every core. ``check`` applies a :class:`Baseline` as the submission checker does. Nothing
heavy is imported here: NLTK and NumPy load when something is scored.

    >>> from pytest_mlperf.accuracy import TARGETS, check, score_log
    >>> scores = score_log("mlperf_log_accuracy.json", dataset.references, tokenizer)
    >>> misses = check(scores, TARGETS["llama3.1-8b"])   # [] when it passes

``choose_baseline`` is the policy that picks a run's baseline (declared, the embedded model's
own figures per sample, or the MLCommons targets with gen_len scaled to a subset).

See docs/accuracy.md for how it works and the proof that it matches the reference.

Layer 1 (with ``data/`` and ``embedded/``): may import ``core``, ``data`` and ``embedded``
(the embedded model's per-sample baseline), nothing higher.
"""

from pytest_mlperf.accuracy.baselines import (
    BASELINE_KEYS,
    BaselineChoice,
    BaselineError,
    choose_baseline,
)
from pytest_mlperf.accuracy.log import AccuracyLogError
from pytest_mlperf.accuracy.recipe import score_log, score_texts
from pytest_mlperf.accuracy.scores import AccuracyScores
from pytest_mlperf.accuracy.targets import TARGETS, Baseline, Miss, check

__all__ = [
    "BASELINE_KEYS",
    "TARGETS",
    "AccuracyLogError",
    "AccuracyScores",
    "Baseline",
    "BaselineChoice",
    "BaselineError",
    "Miss",
    "check",
    "choose_baseline",
    "score_log",
    "score_texts",
]
