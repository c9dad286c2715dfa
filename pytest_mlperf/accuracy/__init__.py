"""Accuracy you can trust: the MLCommons ROUGE recipe, offline, faster, figure for figure.

``score_log`` gives the figures ``language/llama3.1-8b/evaluation.py`` prints for the same
accuracy log, to the last printed decimal, with no download (no ``nltk.download``) and on
every core. ``check`` applies a :class:`Baseline` as the submission checker does. Nothing
heavy is imported here: NLTK and NumPy load when something is scored.

    >>> from pytest_mlperf.accuracy import TARGETS, check, score_log
    >>> scores = score_log("mlperf_log_accuracy.json", dataset.references, tokenizer)
    >>> misses = check(scores, TARGETS["llama3.1-8b"])   # [] when it passes

See docs/accuracy.md for how it works and the proof that it matches the reference.
"""

from pytest_mlperf.accuracy.log import AccuracyLogError
from pytest_mlperf.accuracy.recipe import score_log, score_texts
from pytest_mlperf.accuracy.scores import AccuracyScores
from pytest_mlperf.accuracy.targets import TARGETS, Baseline, Miss, check

__all__ = [
    "TARGETS",
    "AccuracyLogError",
    "AccuracyScores",
    "Baseline",
    "Miss",
    "check",
    "score_log",
    "score_texts",
]
