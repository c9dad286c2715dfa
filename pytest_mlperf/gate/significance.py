"""Is a change significant: asv's rule, over the runs behind two records.

asv (airspeed velocity, ``asv/statistics.py``, ``is_different``) calls two benchmark results
different when a Mann-Whitney U test over their samples rejects "same distribution", and only
uses the test when the samples are many enough for it to reach the threshold; with fewer, it
falls back to whether the two results' intervals overlap. We use the same rule with the runs of
``--mlperf-repeat`` as the samples (the stored record's and today's):

- enough runs (``1 / C(n+m, n) <= alpha``; 3 and 3 runs reach 0.05): an exact one-sided
  Mann-Whitney U test that today's runs are worse than the stored ones, significant when
  ``p <= alpha``;
- fewer: significant when the two sets' ranges (min..max) do not overlap, so with one run each
  the gate is the plain bound.

Rank-based, so no assumption of normal noise (CPU sessions are not: a noisy neighbour gives
a long tail), and exact for the small counts a benchmark job can afford. Bencher's t/z bands
need a history of tens of sessions before their bands mean anything; AIPerf's confidence
intervals over repeats assume normal figures. Pure Python: nothing heavy is imported.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

#: the default significance level of ``FIGURE:BOUND:mwu``
ALPHA = 0.05
#: beyond this many arrangements the exact distribution is replaced by the normal approximation
_EXACT_LIMIT = 200_000


def _u(worse: Sequence[float], base: Sequence[float]) -> float:
    """Pairs where the ``worse`` sample is below the ``base`` one (ties count one half)."""
    return sum(1.0 if x < y else 0.5 if x == y else 0.0 for x in worse for y in base)


def mann_whitney_p(today: Sequence[float], stored: Sequence[float], higher_is_better: bool) -> float:
    """One-sided p-value that ``today`` is worse than ``stored`` (exact when it can be)."""
    if not higher_is_better:
        today, stored = [-x for x in today], [-x for x in stored]
    n, m = len(today), len(stored)
    observed = _u(today, stored)
    pooled = [*today, *stored]
    if math.comb(n + m, n) <= _EXACT_LIMIT:
        count = total = 0
        for chosen in itertools.combinations(range(n + m), n):
            picked = set(chosen)
            a = [pooled[i] for i in chosen]
            b = [pooled[i] for i in range(n + m) if i not in picked]
            total += 1
            count += _u(a, b) >= observed - 1e-9
        return count / total
    mean = n * m / 2
    sd = math.sqrt(n * m * (n + m + 1) / 12)
    z = (observed - mean - 0.5) / sd
    return 0.5 * math.erfc(z / math.sqrt(2))


def significant(today: Sequence[float], stored: Sequence[float], higher_is_better: bool,
                alpha: float = ALPHA) -> tuple[bool, str]:
    """(is today's change significant, how that was decided) by asv's rule above."""
    n, m = len(today), len(stored)
    if n and m and 1 / math.comb(n + m, n) <= alpha:
        p = mann_whitney_p(today, stored, higher_is_better)
        return p <= alpha, f"Mann-Whitney U over {m} stored and {n} runs now: p={p:.3g} (alpha {alpha:g})"
    overlap = min(today) <= max(stored) and min(stored) <= max(today)
    return (not overlap, f"{m} stored and {n} runs now, too few for Mann-Whitney at alpha {alpha:g}: "
                         f"ranges {'overlap' if overlap else 'apart'}")
