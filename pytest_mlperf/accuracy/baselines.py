"""Which baseline an accuracy run is judged against: one policy for the plugin and the CLI.

In order: a baseline the user declared (figures, or the name of MLCommons targets); on the
embedded sample set (recognized by content, whatever the file is called), the embedded model's
own figures for exactly the records scored; else the benchmark's MLCommons targets. The
targets are for a whole data set: over fewer samples their ROUGE means are applied as they are,
``gen_len`` (a total) is scaled to the samples scored, and the result is labelled as not an
MLPerf accuracy result.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pytest_mlperf.accuracy.targets import TARGETS, Baseline

#: the keys of a declared baseline: figures, and the count of samples they are for
BASELINE_KEYS = ("rouge1", "rouge2", "rougeL", "rougeLsum", "gen_len", "tokens_per_sample",
                 "samples")
_INTEGER_KEYS = ("gen_len", "samples")
_DECLARE = "declare baseline={...} in the mlperf marker"


@dataclass(frozen=True)
class BaselineChoice:
    """What a run is judged against (ratio applied, gen_len scaled) and what the verdict is."""

    baseline: Baseline
    #: True only for MLCommons targets judged over their full data set at their own ratio
    official: bool
    #: e.g. "64 of 13,368 samples: not an MLPerf accuracy result"
    note: str | None = None


class BaselineError(ValueError):
    """No baseline can be chosen; the message says what the user should declare."""


def choose_baseline(*, benchmark: str, declared: str | Mapping[str, float] | None,
                    ratio: float | None, dataset_sha256: str, model_is_embedded: bool,
                    sample_indices: Sequence[int], dataset_total: int) -> BaselineChoice:
    """The baseline for an accuracy run of ``benchmark`` over ``sample_indices`` (QSL indices
    of a data set of ``dataset_total`` records whose file hashes to ``dataset_sha256``).

    ``declared`` (the marker's ``baseline``): a mapping of :data:`BASELINE_KEYS` (``samples``:
    the count its figures are for; ``gen_len`` is scaled from it) or a :data:`TARGETS` name.
    ``ratio``: None keeps the baseline's own (0.99; 0.999 for llama2-70b-99.9), a number
    applies to every baseline, official targets included (another ratio than the targets'
    own makes the verdict not an MLPerf one: ``official`` False, said in ``note``). On the
    embedded set the figures are
    reduced in the order of ``sample_indices``: pass the accuracy log's order when known to
    reproduce its figures bit for bit (QSL order gives the same 4-decimal figures unless a mean
    lies within float rounding of a 4th-decimal half).
    """
    n = len(sample_indices)
    if n < 1:
        raise ValueError("no samples to judge")
    if not 0 <= min(sample_indices) <= max(sample_indices) < dataset_total:
        raise ValueError(f"sample indices outside the data set's 0..{dataset_total - 1}")
    if isinstance(declared, Mapping):
        return BaselineChoice(_declared(benchmark, declared).scaled_to(n).with_ratio(ratio),
                              official=False)
    if isinstance(declared, str):
        if declared not in TARGETS:
            raise BaselineError(f"baseline={declared!r} is not one of {', '.join(sorted(TARGETS))}"
                                f"; name one of them or {_DECLARE}")
        return _targets(TARGETS[declared], n, dataset_total, ratio)
    if declared is not None:
        raise BaselineError(f"baseline={declared!r} is neither figures nor a target name; "
                            f"{_DECLARE}")
    from pytest_mlperf import embedded

    if embedded.is_embedded_dataset(dataset_sha256):
        if not model_is_embedded:
            raise BaselineError("no baseline for this model on the embedded sample set (its "
                                "figures are the embedded model's own): " + _DECLARE)
        return BaselineChoice(embedded.baseline_for(sample_indices).with_ratio(ratio),
                              official=False)
    if benchmark not in TARGETS:
        raise BaselineError(f"no accuracy baseline for benchmark {benchmark!r}: MLCommons "
                            f"targets exist for {', '.join(sorted(TARGETS))}; {_DECLARE} "
                            "(figures, or one of those names)")
    return _targets(TARGETS[benchmark], n, dataset_total, ratio)


def _targets(targets: Baseline, n: int, dataset_total: int,
             ratio: float | None) -> BaselineChoice:
    baseline = targets.scaled_to(n).with_ratio(ratio)
    reasons = []
    if not (n == targets.samples and dataset_total == targets.samples):
        reasons.append(f"{n:,} of {targets.samples:,} samples" if targets.samples
                       else f"{n:,} samples")
    if baseline.ratio != targets.ratio:  # the checker's bound is the targets' own ratio
        reasons.append(f"ROUGE ratio {baseline.ratio:g} (MLPerf: {targets.ratio:g})")
    if not reasons:
        return BaselineChoice(baseline, official=True)
    return BaselineChoice(baseline, official=False,
                          note=f"{', '.join(reasons)}: not an MLPerf accuracy result")


def _declared(benchmark: str, values: Mapping[str, float]) -> Baseline:
    unknown = sorted(set(values) - set(BASELINE_KEYS))
    if unknown:
        raise BaselineError(f"baseline keys {unknown} are unknown; use "
                            f"{', '.join(BASELINE_KEYS)}")
    figures: dict[str, float | int] = {}
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
                value) or value < 0:
            raise BaselineError(f"baseline {key}={value!r} is not a number >= 0")
        if key in _INTEGER_KEYS:
            if value != int(value):
                raise BaselineError(f"baseline {key}={value!r} is not a whole number")
            value = int(value)
        figures[key] = value
    if not figures.keys() - {"samples"}:
        raise BaselineError(f"baseline={dict(values)!r} has no figure to check; "
                            f"give some of {', '.join(BASELINE_KEYS[:-1])}")
    try:
        return Baseline(name=f"{benchmark} (declared)", **figures)  # type: ignore[arg-type]
    except ValueError as e:
        raise BaselineError(str(e)) from None
